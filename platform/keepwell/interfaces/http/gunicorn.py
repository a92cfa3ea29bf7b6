"""Settings for gunicorn (`gunicorn -c python:keepwell.interfaces.http.gunicorn 'keepwell.app:create_app()'`).

The access log records the path without its query string (`%(U)s`, not the request line): a
query string may hold what must not be kept in logs, such as a token pasted into a link."""

accesslog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = "127.0.0.1"
