"""Default load for the lab's sample service: what a user of the API does.

Weights and timeouts are this file's own choice, not the operations plan's (no seed
gives load targets): copy it and change it to match your traffic.
"""
from locust import FastHttpUser, constant_throughput, task


class ApiUser(FastHttpUser):
    # Each user sends ~5 requests/s: 30 users ~ 150 req/s, enough to see a 1 % drop
    # within a second while leaving CPU for the lab on a 2-core machine.
    wait_time = constant_throughput(5)
    # Explicit timeouts: without them a blackholed backend would hang users forever.
    connection_timeout = 3.0
    network_timeout = 5.0

    @task(6)
    def read(self):
        self.client.get("/api/orders", name="GET /api/orders")

    @task(3)
    def write(self):
        self.client.post("/api/orders", json={"item": "x"}, name="POST /api/orders")

    @task(1)
    def quote(self):
        self.client.get("/api/quote", name="GET /api/quote")

    @task(1)
    def ping(self):
        self.client.get("/api/ping", name="GET /api/ping")
