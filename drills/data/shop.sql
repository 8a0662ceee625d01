-- A small shop schema for the mysqldump drill's test bed (seed 003: SafeVideo runs MySQL).
CREATE DATABASE shop;
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, email VARCHAR(120) NOT NULL UNIQUE);
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2) NOT NULL,
                     created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
                     FOREIGN KEY (customer_id) REFERENCES customers(id));
-- the application's continuous writes (a row every 0.1 s from the test bed): RPO is measured on it
CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(20),
                     created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
INSERT INTO customers VALUES (1, 'Aiko', 'aiko@example.test'), (2, 'Ben', 'ben@example.test'),
                             (3, 'Chen', 'chen@example.test'), (4, 'Dana', 'dana@example.test');
INSERT INTO orders (id, customer_id, amount) VALUES (1, 1, 12.50), (2, 2, 8.00), (3, 1, 99.90),
                                                    (4, 3, 5.25), (5, 4, 42.00), (6, 2, 17.75);
