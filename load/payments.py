"""Load for the payment GameDay scenario: the default API mix plus payments.

POST /api/payments answers 201 (sent to the dependency) or 202 (queued while the
dependency is down): both are successes for the user.
"""
from locust import FastHttpUser, constant_throughput, task


class PaymentUser(FastHttpUser):
    wait_time = constant_throughput(5)
    connection_timeout = 3.0
    network_timeout = 5.0

    @task(5)
    def read(self):
        self.client.get("/api/orders", name="GET /api/orders")

    @task(2)
    def write(self):
        self.client.post("/api/orders", json={"item": "x"}, name="POST /api/orders")

    @task(2)
    def pay(self):
        self.client.post("/api/payments", json={"amount": 1}, name="POST /api/payments")

    @task(1)
    def quote(self):
        self.client.get("/api/quote", name="GET /api/quote")
