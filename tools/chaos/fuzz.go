package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"outboxsaga.dev/stack"
)

// FuzzResult is what the live fuzz found.
type FuzzResult struct {
	Ran      bool
	Requests int
	ByStatus map[int]int
	// Extreme counts the valid orders at the edges of the bounds (schemas.Generator, extreme
	// mode) sent among the random requests; each must be accepted and reach a terminal status.
	Extreme  int
	Problems []string
}

// fuzzSeeds are valid bodies the mutator starts from.
func fuzzSeeds(sku string) map[string][]string {
	return map[string][]string{
		"order": {
			jsonBody(map[string]any{"customerId": "U-fuzz", "currency": "KRW", "paymentToken": "tok_ok",
				"items": []map[string]any{{"sku": sku, "qty": 1, "unitPrice": 1000}}}),
		},
		"stock": {`{"available": 5}`},
	}
}

// mutate returns a random variation of body: bytes flipped, cut, duplicated, or JSON-ish noise.
func (r *Runner) mutate(body string) string {
	b := []byte(body)
	switch r.rng.IntN(8) {
	case 0: // flip some bytes
		for range 1 + r.rng.IntN(4) {
			if len(b) > 0 {
				b[r.rng.IntN(len(b))] = byte(r.rng.IntN(256))
			}
		}
	case 1: // truncate
		if len(b) > 0 {
			b = b[:r.rng.IntN(len(b))]
		}
	case 2: // replace a number with an extreme one
		extremes := []string{"-1", "0", "1e309", "9223372036854775808", "-9223372036854775809", "1.5", `"1"`, "null", "[]", "{}"}
		s := string(b)
		for _, n := range []string{"1000", ": 1", ": 5"} {
			if strings.Contains(s, n) {
				s = strings.Replace(s, n, strings.Replace(n, strings.TrimLeft(n, ": "), extremes[r.rng.IntN(len(extremes))], 1), 1)
				break
			}
		}
		b = []byte(s)
	case 3: // random bytes
		b = make([]byte, r.rng.IntN(64))
		for i := range b {
			b[i] = byte(r.rng.IntN(256))
		}
	case 4: // unknown field, duplicate key, trailing data
		extra := []string{`,"evil":1}`, `,"currency":"USD"}`, `} {}`, `}}`, `,"items":null}`}
		s := strings.TrimRight(string(b), "\n")
		b = []byte(strings.TrimSuffix(s, "}") + extra[r.rng.IntN(len(extra))])
	case 5: // wrong types and strings
		repl := []string{`"customerId":""`, `"customerId":1`, `"currency":"€€€"`, `"paymentToken":"` + strings.Repeat("x", 5000) + `"`, `"items":[]`, `"items":[{}]`,
			`"customerId":"U\u0000"`, `"paymentToken":"tok\u0000ok"`, `"items":[{"sku":"A\u0000B","qty":1,"unitPrice":1}]`}
		s := string(b)
		if i := strings.Index(s, `"customerId":"U-fuzz"`); i >= 0 {
			s = s[:i] + repl[r.rng.IntN(len(repl))] + s[i+len(`"customerId":"U-fuzz"`):]
		}
		b = []byte(s)
	case 6: // deep nesting
		b = []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))
	default: // empty
		b = nil
	}
	return string(b)
}

// fuzz sends random and mutated requests to every endpoint of the services: nothing may answer
// 5xx, and rejected input must change nothing (orders created, the fuzz SKU's stock, dead letters).
func (r *Runner) fuzz(ctx context.Context) FuzzResult {
	res := FuzzResult{Ran: true, ByStatus: map[int]int{}}
	eps := r.cfg.Endpoints
	sku := r.prefix + "-FUZZ"
	if code, raw := send(ctx, http.MethodPut, eps.OrderURL+"/prices/"+sku, `{"unitPrice": 1000, "currency": "KRW"}`, r.adminHeaders()); code != http.StatusOK {
		res.Problems = append(res.Problems, fmt.Sprintf("price fuzz SKU: %d %s", code, raw))
		return res
	}
	if code, raw := send(ctx, http.MethodPut, eps.InventoryURL+"/stock/"+sku, `{"available": 5}`, r.adminHeaders()); code != http.StatusOK {
		res.Problems = append(res.Problems, fmt.Sprintf("stock fuzz SKU: %d %s", code, raw))
		return res
	}
	createdBefore := r.metric(ctx, eps.OrderURL, "orders_created_total")
	stockBefore, _ := eps.Stock(ctx, sku)
	dlBefore := r.deadLetterTotals(ctx)
	seeds := fuzzSeeds(sku)
	accepted, stockWrites := 0, 0
	extreme, err := newExtremeOrders(r.rng.Uint64())
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	for i := range r.cfg.FuzzRequests {
		if i%8 == 7 {
			if p := extreme.place(ctx, r); p != "" {
				res.Problems = append(res.Problems, p)
			} else {
				accepted++
			}
			continue
		}
		method, target, body := r.fuzzRequest(i, seeds, sku)
		headers := r.adminHeaders()
		if method == http.MethodPost && target == eps.OrderURL+"/orders" {
			// A customer's: spread over a few, so that the customers' request rate lets them through;
			// the body names the token's customer unless the mutation changed it.
			c := fmt.Sprintf("U-fuzz-%d", i%16)
			body = strings.Replace(body, `"customerId":"U-fuzz"`, `"customerId":"`+c+`"`, 1)
			headers = map[string]string{"Authorization": r.customers.MustBearer(c)}
		}
		code, raw := send(ctx, method, target, body, headers)
		res.Requests++
		res.ByStatus[code]++
		if code >= 500 || code == 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("%s %s %.80q → %d %s", method, target, body, code, raw))
		}
		if code >= 200 && code < 300 && method == http.MethodPost {
			accepted++
		}
		if code >= 200 && code < 300 && method == http.MethodPut {
			stockWrites++
		}
	}
	res.Extreme = len(extreme.placed)
	res.Problems = append(res.Problems, extreme.awaitTerminal(ctx, r, 2*time.Minute)...)
	createdAfter := r.metric(ctx, eps.OrderURL, "orders_created_total")
	if createdAfter-createdBefore != float64(accepted) {
		res.Problems = append(res.Problems, fmt.Sprintf("orders_created_total grew by %.0f, but only %d fuzz orders were accepted", createdAfter-createdBefore, accepted))
	}
	if stockAfter, _ := eps.Stock(ctx, sku); stockAfter != stockBefore && stockWrites == 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("stock of %s changed by rejected input: %+v → %+v", sku, stockBefore, stockAfter))
	}
	if dlAfter := r.deadLetterTotals(ctx); !maps.Equal(dlAfter, dlBefore) {
		res.Problems = append(res.Problems, fmt.Sprintf("dead letters changed: %v → %v", dlBefore, dlAfter))
	}
	r.logf("fuzz: %d requests, statuses %v, %d extreme valid orders, %d problems", res.Requests, res.ByStatus, res.Extreme, len(res.Problems))
	for _, p := range res.Problems {
		r.logf("fuzz problem: %s", p)
	}
	return res
}

// fuzzRequest builds request i: mostly mutated bodies for the writing endpoints, the rest random
// paths and query strings for the reading ones.
func (r *Runner) fuzzRequest(i int, seeds map[string][]string, sku string) (string, string, string) {
	eps := r.cfg.Endpoints
	junk := []string{"", "x", "%00", "..%2F..%2Fetc", strings.Repeat("a", 3000), "00000000-0000-0000-0000-000000000000", "-1", "%ff%fe", "🙂"}
	j := junk[r.rng.IntN(len(junk))]
	switch i % 6 {
	case 0, 1:
		body := seeds["order"][0]
		body = r.mutate(body)
		return http.MethodPost, eps.OrderURL + "/orders", body
	case 2:
		// Only rejected stock writes count: a mutated body that is still valid could set the stock,
		// so the fuzz SKU's own stock is compared only when no PUT succeeded.
		return http.MethodPut, eps.InventoryURL + "/stock/" + sku, r.mutate(seeds["stock"][0])
	case 3:
		paths := []string{eps.OrderURL + "/orders/" + j, eps.OrderURL + "/orders/" + j + "/events", eps.InventoryURL + "/stock/" + j, eps.PaymentURL + "/payments/" + j}
		return http.MethodGet, paths[r.rng.IntN(len(paths))], ""
	case 4:
		bases := []string{eps.OrderURL, eps.InventoryURL, eps.PaymentURL}
		q := []string{"limit=" + url.QueryEscape(j), "limit=-5", "limit=100000", "limit=1e3"}
		return http.MethodGet, bases[r.rng.IntN(len(bases))] + "/dead-letters?" + q[r.rng.IntN(len(q))], ""
	default:
		bases := []string{eps.OrderURL, eps.InventoryURL, eps.PaymentURL}
		ids := []string{"abc", "-1", "0", "99999999999999999999", strconv.Itoa(1_000_000_000 + r.rng.IntN(1000))}
		return http.MethodPost, bases[r.rng.IntN(len(bases))] + "/dead-letters/" + ids[r.rng.IntN(len(ids))] + "/replay", r.mutate(`{}`)
	}
}

func (r *Runner) adminHeaders() map[string]string {
	if r.cfg.Endpoints.AdminToken == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + r.cfg.Endpoints.AdminToken}
}

// metric reads one counter of a service (-1 when absent).
func (r *Runner) metric(ctx context.Context, base, name string) float64 {
	if r.members == nil {
		return r.metricAt(ctx, base, name)
	}
	// On the cluster the proxy answers from one instance at a time, each with its own counters:
	// the service's figure is their sum.
	var sum float64
	for i := 1; i <= stack.Instances; i++ {
		addr, err := besideAddr(base, i*stack.InstancePortStep)
		if err != nil {
			return -1
		}
		v := r.metricAt(ctx, "http://"+addr, name)
		if v < 0 {
			return -1
		}
		sum += v
	}
	return sum
}

// metricAt reads the value of the unlabeled series name from base's /metrics (-1: none).
func (r *Runner) metricAt(ctx context.Context, base, name string) float64 {
	code, raw := send(ctx, http.MethodGet, base+"/metrics", "", nil)
	if code != http.StatusOK {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// deadLetterTotals counts each service's dead letters (up to 1000).
func (r *Runner) deadLetterTotals(ctx context.Context) map[string]int {
	out := map[string]int{}
	for _, svc := range Services {
		n, _ := r.deadLettersWithPrefix(ctx, svc, "")
		out[svc] = n
	}
	return out
}
