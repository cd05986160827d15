-- The operators' list (GET /orders, the console's sagas page) reads the orders newest first with a
-- keyset cursor (created_at, id): without this index every page sorted the whole table (185 ms
-- per page at 100,000 orders, measured; 0.2 ms with it).
CREATE INDEX IF NOT EXISTS orders_newest_first ON orders (created_at DESC, id DESC);
