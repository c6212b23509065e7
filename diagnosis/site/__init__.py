"""Going live at a site: its own ground truth (acceptance set, verification sample), the operating point it
adopts from that evidence, and the monitoring that watches it afterwards. The statistics are worker.ml.site and
worker.ml.drift; this package reads and writes the records."""
