package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	invapp "outboxsaga.dev/inventory/app"
	invpg "outboxsaga.dev/inventory/postgres"
	invsaga "outboxsaga.dev/inventory/saga"
	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
	orderapp "outboxsaga.dev/order/app"
	orderpg "outboxsaga.dev/order/postgres"
	ordersaga "outboxsaga.dev/order/saga"
	"outboxsaga.dev/payment"
	payapp "outboxsaga.dev/payment/app"
	paypg "outboxsaga.dev/payment/postgres"
	paysaga "outboxsaga.dev/payment/saga"
	"outboxsaga.dev/schemas"
	"outboxsaga.dev/tools/latency"
)

// CeilingResult is one concurrency level of the bare-database ceiling.
type CeilingResult struct {
	Workers  int
	Duration time.Duration
	// Sagas is how many whole happy-path sagas (every transaction of every step) committed.
	Sagas int64
	// TxPerSaga is how many transactions one saga commits (len(CeilingShape)).
	TxPerSaga int
	// PerSecond is Sagas per second: the "saga-equivalents per second".
	PerSecond float64
	// TxPerSecond is the transactions per second they stand for: PerSecond × TxPerSaga.
	TxPerSecond float64
	// Saga is the distribution of one whole saga's wall time (its transactions back to back).
	Saga latency.Summary
	// CPU is the CPU time of the level (Postgres serves it, the load generator runs the saga
	// steps' Go code), when the ceiling had a meter.
	CPU *CPUWindow
	// Err is why the level failed (it has no figures then); the sweep goes on without it.
	Err string
}

// CeilingSweep is the ceiling at every concurrency level of the sweep.
type CeilingSweep struct {
	Levels []CeilingResult
	// Commits and Rollbacks are what Postgres counted (pg_stat_database.xact_commit and
	// xact_rollback) in the scratch databases over the whole sweep, its setup included (the
	// migrations and the stock: a few dozen), against Sagas whole sagas: the transactions per
	// saga as the database saw them, statements outside a transaction block included.
	Commits, Rollbacks, Sagas int64
}

// Best is the level with the most saga-equivalents per second.
func (s CeilingSweep) Best() (CeilingResult, bool) {
	var best CeilingResult
	found := false
	for _, l := range s.Levels {
		if l.Err == "" && (!found || l.PerSecond > best.PerSecond) {
			best, found = l, true
		}
	}
	return best, found
}

// TxShape is one transaction of the ceiling's saga.
type TxShape struct {
	Database string
	// Step names the event (or request) that the transaction handles.
	Step string
	// Does is what the transaction writes.
	Does string
}

// CeilingShape is what one saga of the ceiling commits: the core happy path through the
// services' own code, in order (sagaSteps.run). Shipping and notifications are not in it.
var CeilingShape = []TxShape{
	{"order_db", "POST /orders", "INSERT orders + order_items + order_events (OrderCreated) + order_timeline"},
	{"inventory_db", "OrderCreated", "inbox INSERT + stock rows locked and updated + INSERT reservations + outbox (StockReserved)"},
	{"order_db", "StockReserved", "inbox INSERT + orders row locked + order_timeline"},
	{"payment_db", "StockReserved (admit)", "inbox check + INSERT payments AUTHORIZING (then the gateway call, outside any transaction)"},
	{"payment_db", "StockReserved (settle)", "inbox INSERT + payments AUTHORIZED + outbox (PaymentAuthorized)"},
	{"order_db", "PaymentAuthorized", "inbox INSERT + orders COMPLETED + order_timeline ×2 + order_events (OrderCompleted)"},
	{"inventory_db", "OrderCompleted", "inbox INSERT + reservation COMMITTED + stock reserved→sold + outbox (StockCommitted)"},
	{"order_db", "StockCommitted", "inbox INSERT + orders row locked + order_timeline"},
}

// ceilingDBs names the scratch databases of the ceiling, one per service.
var ceilingDBs = [3]string{"bench_order_db", "bench_inventory_db", "bench_payment_db"}

// Ceiling runs the happy-path saga's Postgres transactions directly from Go, with no Kafka and no
// HTTP, through the services' own repositories and saga handlers, against scratch databases
// (created next to the service databases on adminURL, migrated with the services' own Migrate,
// dropped at the end). At each concurrency level of workers, that many goroutines run whole
// sagas back to back for d (CeilingShape is one saga). With a meter, each level's CPU is
// measured too. A level that fails (Postgres refuses the connections, say) is reported as such
// and the sweep goes on.
func Ceiling(ctx context.Context, adminURL string, workers []int, d time.Duration, skus []string, meter *CPUMeter) (CeilingSweep, error) {
	var sweep CeilingSweep
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		return sweep, fmt.Errorf("ceiling: open admin database: %w", err)
	}
	defer admin.Close()
	dbs := make([]*sql.DB, len(ceilingDBs))
	defer func() {
		for i, db := range dbs {
			if db != nil {
				db.Close()
			}
			_, _ = admin.ExecContext(context.WithoutCancel(ctx), `DROP DATABASE IF EXISTS `+ceilingDBs[i]+` WITH (FORCE)`)
		}
	}()
	most := slices.Max(workers)
	for i, name := range ceilingDBs {
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			return sweep, fmt.Errorf("ceiling: drop %s: %w", name, err)
		}
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
			return sweep, fmt.Errorf("ceiling: create %s: %w", name, err)
		}
		u, err := withDatabase(adminURL, name)
		if err != nil {
			return sweep, err
		}
		if dbs[i], err = msgpg.Open(ctx, u, most+4, 10*time.Second); err != nil {
			return sweep, fmt.Errorf("ceiling: open %s: %w", name, err)
		}
		dbs[i].SetMaxIdleConns(most + 4)
	}
	orderDB, invDB, payDB := dbs[0], dbs[1], dbs[2]
	if err := msgpg.MigrateService(ctx, orderDB, "order", orderpg.Migrations); err != nil {
		return sweep, fmt.Errorf("ceiling: %w", err)
	}
	if err := msgpg.MigrateService(ctx, invDB, "inventory", invpg.Migrations); err != nil {
		return sweep, fmt.Errorf("ceiling: %w", err)
	}
	if err := msgpg.MigrateService(ctx, payDB, "payment", paypg.Migrations); err != nil {
		return sweep, fmt.Errorf("ceiling: %w", err)
	}
	validator, err := schemas.New()
	if err != nil {
		return sweep, fmt.Errorf("ceiling: schemas: %w", err)
	}
	stock := invpg.NewStockLevels(invDB, msgpg.NewOutbox(validator))
	for _, sku := range skus {
		if _, err := stock.SetAvailable(ctx, sku, 1_000_000_000); err != nil {
			return sweep, fmt.Errorf("ceiling: stock %s: %w", sku, err)
		}
	}
	s, err := newSagaSteps(orderDB, invDB, payDB)
	if err != nil {
		return sweep, err
	}
	for _, w := range workers {
		var before CPUSample
		if meter != nil {
			before, _ = meter.Sample()
		}
		level, err := ceilingLevel(ctx, s, w, d, skus)
		if ctx.Err() != nil {
			return sweep, ctx.Err()
		}
		if err != nil {
			level.Err = err.Error()
		} else if meter != nil {
			if after, err := meter.Sample(); err == nil {
				win := NewCPUWindow(fmt.Sprintf("ceiling %d", w), 0, int(level.Sagas), before, after)
				level.CPU = &win
			}
		}
		sweep.Sagas += level.Sagas
		sweep.Levels = append(sweep.Levels, level)
	}
	// Closed pools end their backends, which report their counts as they exit.
	for i, db := range dbs {
		db.Close()
		dbs[i] = nil
	}
	time.Sleep(time.Second)
	err = admin.QueryRowContext(ctx, `SELECT COALESCE(sum(xact_commit), 0)::bigint, COALESCE(sum(xact_rollback), 0)::bigint
		FROM pg_stat_database WHERE datname IN ($1, $2, $3)`, ceilingDBs[0], ceilingDBs[1], ceilingDBs[2]).Scan(&sweep.Commits, &sweep.Rollbacks)
	if err != nil {
		return sweep, fmt.Errorf("ceiling: count the commits: %w", err)
	}
	return sweep, nil
}

// ceilingLevel runs workers goroutines of whole sagas for d.
func ceilingLevel(ctx context.Context, s *sagaSteps, workers int, d time.Duration, skus []string) (CeilingResult, error) {
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
	n := sagas.Load()
	res := CeilingResult{Workers: workers, Duration: elapsed, Sagas: n, TxPerSaga: txPerSaga}
	if firstEr != nil {
		return res, fmt.Errorf("ceiling at %d workers: %w", workers, firstEr)
	}
	res.PerSecond = float64(n) / elapsed.Seconds()
	res.TxPerSecond = res.PerSecond * float64(txPerSaga)
	res.Saga = latency.Summarize(walls)
	return res, nil
}

// txPerSaga is how many transactions sagaSteps.run commits.
var txPerSaga = len(CeilingShape)

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
	events  *orderpg.Events
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
	inv := invsaga.New(invDB, outbox, invapp.New(invpg.NewReservations(invDB), invapp.NewMetrics(reg))).Router()
	payMetrics := payapp.NewMetrics(reg)
	alerts := payapp.Alerts{DeadLetters: msgpg.NewDeadLetters(payDB, outbox), Service: "payment"}
	pay := paysaga.New(payDB, payapp.New(payDB, paypg.NewPayments(payDB), outbox, alerts, approveAll{}, payMetrics))
	events := orderpg.NewEvents(orderDB, outbox, nil)
	return &sagaSteps{
		orderDB: orderDB, orders: orders, events: events,
		order: ordersaga.New(orderDB, orderapp.New(orderapp.Config{DB: orderDB, Orders: orders, Events: events}), metrics).Router(),
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
		d, err := order.Decide(order.Order{}, tp, created, order.CreatedVersion, now, order.Meta{DeadlineAt: o.DeadlineAt}, nil)
		if err != nil {
			return err
		}
		if _, err := s.orders.Insert(ctx, tx, d.State, order.Idempotency{}); err != nil {
			return err
		}
		if err := s.events.Append(ctx, tx, d); err != nil {
			return err
		}
		return s.orders.Record(ctx, tx, o.ID, d.Entry())
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
		version := 1
		if st.typ == order.EventOrderCreated {
			version = order.CreatedVersion
		}
		env, err := messaging.NewEnvelope(st.agg, id, st.typ, version, st.data, tp)
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
	return payment.ChargeResult{ChargeID: "ch_" + req.IdempotencyKey, Status: payment.ChargeStatusApproved,
		OrderID: req.OrderID, IdempotencyKey: req.IdempotencyKey, Amount: req.Amount, Currency: req.Currency}, nil
}

// Void voids the charge of req's key.
func (approveAll) Void(_ context.Context, req payment.VoidRequest) (payment.ChargeResult, error) {
	return payment.ChargeResult{ChargeID: "ch_" + req.IdempotencyKey, Status: payment.ChargeStatusVoided,
		OrderID: req.OrderID, IdempotencyKey: req.IdempotencyKey, Amount: req.Amount, Currency: req.Currency}, nil
}

// Markdown renders the sweep: every level (with the CPU per saga of Postgres and of the Go code
// that ran the steps, when cost has an idle baseline), the best, the commits Postgres counted and
// the shape of one saga.
func (s CeilingSweep) Markdown(cost *CostModel) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	best, ok := s.Best()
	p("The saga's transactions straight from Go, no Kafka and no HTTP, through the services' own repositories and saga steps, against scratch databases of the same cluster; ")
	p("each level runs that many workers, each committing whole sagas back to back. ")
	p("A saga-equivalent is one whole saga (%d transactions, below).\n\n", txPerSaga)
	p("| workers | s | sagas | saga-equivalents/s | transactions/s | saga p50 ms | saga p99 ms | Postgres CPU-ms/saga | saga steps' Go CPU-ms/saga |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	perSaga := func(w *CPUWindow, c string) string {
		if cost == nil || w == nil {
			return "–"
		}
		if v, ok := cost.PerSaga(*w, c); ok {
			return fmt.Sprintf("%.2f", v)
		}
		return "–"
	}
	for _, l := range s.Levels {
		if l.Err != "" {
			p("| %d | – | – | failed: %s | | | | | |\n", l.Workers, l.Err)
			continue
		}
		bold := ""
		if ok && l.Workers == best.Workers {
			bold = "**"
		}
		p("| %s%d%s | %.0f | %d | %s%.0f%s | %s%.0f%s | %.1f | %.1f | %s | %s |\n", bold, l.Workers, bold,
			l.Duration.Seconds(), l.Sagas, bold, l.PerSecond, bold, bold, l.TxPerSecond, bold,
			ms(l.Saga.P50), ms(l.Saga.P99), perSaga(l.CPU, "postgres"), perSaga(l.CPU, LoadGenerator))
	}
	if ok {
		p("\nBest: **%.0f saga-equivalents/s = %.0f transactions/s, at %d workers**.", best.PerSecond, best.TxPerSecond, best.Workers)
	}
	if s.Sagas > 0 && s.Commits > 0 {
		p(" Postgres counted %d commits and %d rollbacks in the scratch databases for %d sagas: %.2f transactions per saga as the database sees them (setup included; a statement outside a transaction block is a transaction of its own).",
			s.Commits, s.Rollbacks, s.Sagas, float64(s.Commits+s.Rollbacks)/float64(s.Sagas))
	}
	p("\n\nOne saga, in order (the gateway answers at once; the pipeline's shipping and notification steps are not in it):\n\n")
	p("| # | database | handles | writes |\n|---:|---|---|---|\n")
	for i, t := range CeilingShape {
		p("| %d | %s | %s | %s |\n", i+1, t.Database, t.Step, t.Does)
	}
	return b.String()
}
