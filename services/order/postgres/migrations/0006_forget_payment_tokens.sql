-- A finished order forgets its payment token (issue 19, point 6): the token is needed only for the
-- OrderCreated event, written in the transaction that places the order. From now on the
-- transaction that makes an order COMPLETED or CANCELED clears it (postgres.Orders); this clears
-- it on the orders that finished before.
UPDATE orders SET payment_token = '' WHERE status IN ('COMPLETED', 'CANCELED') AND payment_token <> '';
