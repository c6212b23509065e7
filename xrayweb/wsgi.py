import os

from django.core.wsgi import get_wsgi_application

from xrayweb.chunked import ChunkedBodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xrayweb.settings")
application = ChunkedBodies(get_wsgi_application())
