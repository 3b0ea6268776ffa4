import multiprocessing
import os

# Gunicorn configuration, loaded with `gunicorn -c gunicorn.conf.py wsgi:app`.
bind = "0.0.0.0:8000"
# bind = "127.0.0.1:3000"   # old layout, before the app moved behind the load balancer

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = 4
timeout = 30
graceful_timeout = 30
keepalive = 5

# Recycle workers to contain slow leaks in the PDF renderer.
max_requests = 3000
max_requests_jitter = 300

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
forwarded_allow_ips = "*"
