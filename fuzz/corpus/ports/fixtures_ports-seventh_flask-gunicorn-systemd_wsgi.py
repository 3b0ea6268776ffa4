import os

from app import create_app

app = create_app()

if __name__ == "__main__":
    # Local debugging only; production goes through gunicorn.conf.py.
    app.run(
        host="127.0.0.1",
        port=int(os.getenv("PORT", "8000")),
        debug=True,
    )
