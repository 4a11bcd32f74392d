"""A real SMTP server for tests: Python's standard smtpd, writing each message it receives to
DIR/<n>.eml. Prints "ready" once it listens. Usage: smtp_sink.py PORT DIR"""
import asyncore
import os
import smtpd
import sys


class Sink(smtpd.SMTPServer):
    count = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        Sink.count += 1
        path = os.path.join(sys.argv[2], f"{Sink.count}.eml")
        with open(path + ".partial", "wb") as out:
            out.write(data if isinstance(data, bytes) else data.encode())
        os.rename(path + ".partial", path)


Sink(("127.0.0.1", int(sys.argv[1])), None, decode_data=False)
print("ready", flush=True)
asyncore.loop(timeout=0.2)
