package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	invpg "outboxsaga.dev/inventory/postgres"
	invsaga "outboxsaga.dev/inventory/saga"
	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
	orderpg "outboxsaga.dev/order/postgres"
	ordersaga "outboxsaga.dev/order/saga"
	"outboxsaga.dev/payment"
	paypg "outboxsaga.dev/payment/postgres"
	paysaga "outboxsaga.dev/payment/saga"
	"outboxsaga.dev/schemas"
	"outboxsaga.dev/tools/latency"
)

// CeilingResult is what the bare-database ceiling measured.
type CeilingResult struct {
	Workers  int
	Duration time.Duration
	// Sagas is how many whole happy-path sagas (every transaction of every step) committed.
	Sagas int64
	// TxPerSaga is how many transactions one saga commits.
	TxPerSaga int
	// PerSecond is Sagas per second: the "saga-equivalents per second".
	PerSecond float64
	// Saga is the distribution of one whole saga's wall time (its transactions back to back).
	Saga latency.Summary
}

// ceilingDBs names the scratch databases of the ceiling, one per service.
var ceilingDBs = [3]string{"bench_order_db", "bench_inventory_db", "bench_payment_db"}

// Ceiling runs the happy-path saga's Postgres transactions directly from Go, with no Kafka and no
// HTTP, through the services' own repositories and saga handlers, against scratch databases
// (created next to the service databases on adminURL, migrated with the services' own Migrate,
// dropped at the end). workers goroutines each run whole sagas back to back for d.
//
// One saga is the transactions the pipeline commits for one order: order placed (order + items +
// outbox), stock reserved (inbox + reservation + stock + outbox), StockReserved recorded on the
// order, payment admitted and settled (two transactions around the gateway call, which here
// answers at once), order completed (inbox + order + outbox), reservation committed (inbox +
// reservation + stock + outbox) and StockCommitted recorded on the order.
func Ceiling(ctx context.Context, adminURL string, workers int, d time.Duration, skus []string) (CeilingResult, error) {
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: open admin database: %w", err)
	}
	defer admin.Close()
	dbs := make([]*sql.DB, len(ceilingDBs))
	for i, name := range ceilingDBs {
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			return CeilingResult{}, fmt.Errorf("ceiling: drop %s: %w", name, err)
		}
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
			return CeilingResult{}, fmt.Errorf("ceiling: create %s: %w", name, err)
		}
		u, err := withDatabase(adminURL, name)
		if err != nil {
			return CeilingResult{}, err
		}
		db, err := msgpg.Open(ctx, u, workers+4, 10*time.Second)
		if err != nil {
			return CeilingResult{}, fmt.Errorf("ceiling: open %s: %w", name, err)
		}
		dbs[i] = db
	}
	defer func() {
		for i, db := range dbs {
			db.Close()
			_, _ = admin.ExecContext(context.WithoutCancel(ctx), `DROP DATABASE IF EXISTS `+ceilingDBs[i]+` WITH (FORCE)`)
		}
	}()
	orderDB, invDB, payDB := dbs[0], dbs[1], dbs[2]
	if err := msgpg.MigrateService(ctx, orderDB, "order", orderpg.Migrations); err != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: %w", err)
	}
	if err := msgpg.MigrateService(ctx, invDB, "inventory", invpg.Migrations); err != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: %w", err)
	}
	if err := msgpg.MigrateService(ctx, payDB, "payment", paypg.Migrations); err != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: %w", err)
	}
	stock := invpg.NewStock(invDB)
	for _, sku := range skus {
		if _, err := stock.SetAvailable(ctx, sku, 1_000_000_000); err != nil {
			return CeilingResult{}, fmt.Errorf("ceiling: stock %s: %w", sku, err)
		}
	}
	s, err := newSagaSteps(orderDB, invDB, payDB)
	if err != nil {
		return CeilingResult{}, err
	}

	var (
		sagas   atomic.Int64
		mu      sync.Mutex
		walls   []time.Duration
		firstEr error
		wg      sync.WaitGroup
	)
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			for runCtx.Err() == nil {
				t0 := time.Now()
				// A saga is never cut short: the deadline only stops new ones.
				if err := s.run(context.WithoutCancel(runCtx), skus[rand.IntN(len(skus))]); err != nil {
					mu.Lock()
					firstEr = cmpErr(firstEr, err)
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, time.Since(t0))
				sagas.Add(1)
			}
			mu.Lock()
			walls = append(walls, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstEr != nil {
		return CeilingResult{}, fmt.Errorf("ceiling: %w", firstEr)
	}
	n := sagas.Load()
	return CeilingResult{
		Workers: workers, Duration: elapsed, Sagas: n, TxPerSaga: txPerSaga,
		PerSecond: float64(n) / elapsed.Seconds(), Saga: latency.Summarize(walls),
	}, nil
}

// txPerSaga is how many transactions sagaSteps.run commits.
const txPerSaga = 8

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// withDatabase returns rawURL with its database (path) replaced by name.
func withDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// sagaSteps holds the services' own saga steps over the scratch databases.
type sagaSteps struct {
	orderDB *sql.DB
	orders  *orderpg.Orders
	outbox  *msgpg.Outbox
	order   *messaging.Router
	inv     *messaging.Router
	pay     *messaging.Router
}

func newSagaSteps(orderDB, invDB, payDB *sql.DB) (*sagaSteps, error) {
	reg := prometheus.NewRegistry()
	metrics := ordersaga.NewMetrics(reg)
	validator, err := schemas.New()
	if err != nil {
		return nil, fmt.Errorf("ceiling: schemas: %w", err)
	}
	outbox := msgpg.NewOutbox(validator)
	orders := orderpg.NewOrders(orderDB)
	invMetrics := invsaga.NewMetrics(reg)
	inv := invsaga.New(invDB, invpg.NewStock(invDB), outbox, invMetrics).Router()
	payMetrics := paysaga.NewMetrics(reg)
	pay := paysaga.New(payDB, paypg.NewPayments(payDB), outbox, approveAll{}, payMetrics)
	return &sagaSteps{
		orderDB: orderDB, orders: orders, outbox: outbox,
		order: ordersaga.New(orderDB, orders, outbox, metrics).Router(),
		inv:   inv, pay: pay.Router(),
	}, nil
}

// run commits one whole happy-path saga for a new order of one unit of sku.
func (s *sagaSteps) run(ctx context.Context, sku string) error {
	now := time.Now().UTC()
	o, created, err := order.New(uuid.New(), order.Draft{
		CustomerID: "bench", Currency: "KRW", PaymentToken: "tok_ok", Lines: []order.Line{{SKU: sku, Qty: 1}},
	}, map[string]order.Price{sku: {SKU: sku, UnitPrice: unitPrice, Currency: "KRW"}}, now, time.Minute)
	if err != nil {
		return fmt.Errorf("new order: %w", err)
	}
	tp := messaging.NewTraceparent()
	id := o.ID.String()
	err = msgpg.WithTx(ctx, s.orderDB, func(tx *sql.Tx) error {
		if _, err := s.orders.Insert(ctx, tx, o, orderpg.Idempotency{}); err != nil {
			return err
		}
		envs, err := s.outbox.Emit(ctx, tx, tp, order.AggregateType, id, order.EventVersion, created)
		if err != nil {
			return err
		}
		return s.orders.Record(ctx, tx, o.ID, orderpg.Emitted(envs)...)
	})
	if err != nil {
		return fmt.Errorf("place order: %w", err)
	}
	steps := []struct {
		router *messaging.Router
		topic  string
		agg    string
		typ    string
		data   any
	}{
		{s.inv, "order-events", "order", "OrderCreated", created.Data},
		{s.order, "inventory-events", "inventory", "StockReserved", stockReserved(o)},
		{s.pay, "inventory-events", "inventory", "StockReserved", stockReserved(o)},
		{s.order, "payment-events", "payment", "PaymentAuthorized", map[string]any{
			"orderId": id, "amount": o.Amount, "currency": o.Currency, "pgTxnId": "ch_" + id}},
		{s.inv, "order-events", "order", "OrderCompleted", order.CompletedData{
			OrderID: id, Items: o.Items, Amount: o.Amount, Currency: o.Currency}},
		{s.order, "inventory-events", "inventory", "StockCommitted", map[string]any{
			"orderId": id, "items": o.Items}},
	}
	var stockReservedID string
	for i, st := range steps {
		env, err := messaging.NewEnvelope(st.agg, id, st.typ, 1, st.data, tp)
		if err != nil {
			return err
		}
		// The order and payment services consume the same StockReserved event.
		if st.typ == "StockReserved" {
			if stockReservedID == "" {
				stockReservedID = env.EventID
			}
			env.EventID = stockReservedID
		}
		m := &messaging.Message{Envelope: env, Traceparent: tp, Record: messaging.Record{Topic: st.topic, Key: id, Offset: int64(i)}}
		if err := st.router.Dispatch(ctx, m); err != nil {
			return fmt.Errorf("%s step: %w", st.typ, err)
		}
	}
	return nil
}

func stockReserved(o order.Order) map[string]any {
	return map[string]any{
		"orderId": o.ID.String(), "items": o.Items, "amount": o.Amount,
		"currency": o.Currency, "paymentToken": o.PaymentToken,
	}
}

// approveAll is a card gateway that approves every charge at once: the ceiling measures the
// database, not the gateway.
type approveAll struct{}

// Charge approves req.
func (approveAll) Charge(_ context.Context, req payment.ChargeRequest) (payment.ChargeResult, error) {
	return payment.ChargeResult{ChargeID: "ch_" + req.IdempotencyKey, Status: payment.ChargeApproved}, nil
}

// Void voids the charge of key.
func (approveAll) Void(_ context.Context, _, key string) (payment.ChargeResult, error) {
	return payment.ChargeResult{ChargeID: "ch_" + key, Status: payment.ChargeVoided}, nil
}
