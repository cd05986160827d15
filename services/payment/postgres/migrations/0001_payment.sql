-- One row per order that the payment step has heard of (a StockReserved or an OrderCanceled).
CREATE TABLE payments (
  order_id         text PRIMARY KEY,
  status           text NOT NULL CHECK (status IN ('AUTHORIZING', 'AUTHORIZED', 'FAILED', 'VOIDED', 'CANCELED')),
  amount           bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),  -- minor units
  currency         text NOT NULL DEFAULT '',
  token            text NOT NULL DEFAULT '',
  pg_txn_id        text NOT NULL DEFAULT '',                       -- the gateway's charge id
  reason           text NOT NULL DEFAULT '',                       -- why it FAILED
  cancel_requested boolean NOT NULL DEFAULT false,                 -- OrderCanceled came during the charge
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
