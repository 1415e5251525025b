"""The peers measured against govfn: each one is served by its own runtime, from its own venv.

    raw_wsgi          a WSGI app that reads the body and answers 200: the limit of gunicorn itself
    func_python_echo  the CloudEvent echo function on Knative's func-python (ASGI on hypercorn)
    ff_echo           the `@cloud_event` echo function on Google's functions-framework (Flask)

These modules are imported by the peers' interpreters, so this package imports nothing.
"""
