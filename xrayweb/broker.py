"""Celery's Redis transport with one fix: an acknowledgement that Redis cannot take no longer wedges the worker.

Kombu's Redis QoS removes a message from its local "delivered" list only after Redis has confirmed the ack. When
Redis stalls (SIGSTOP, a full network buffer) the ack times out, Celery logs "Couldn't ack", and the message stays
counted as unacknowledged in the worker forever. With acks_late and a prefetch of one (our settings) the worker
then never fetches again, although it is connected and Redis is back: every later study waits for a restart.

Here the worker forgets the message locally whatever Redis answered. Where Redis never ran the ack, the message
stays in its unacked index and Kombu re-delivers it after the visibility timeout: harmless, since the task claims
only jobs still queued (diagnosis.batching), so no study is judged twice.
"""

from __future__ import annotations

from kombu.transport import redis, virtual


class QoS(redis.QoS):
    def ack(self, delivery_tag: str) -> None:
        try:
            super().ack(delivery_tag)
        except Exception:
            virtual.QoS.ack(self, delivery_tag)  # free the prefetch slot (Redis may re-deliver the message later)
            raise

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)
        except Exception:
            virtual.QoS.ack(self, delivery_tag)
            raise


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
