package e2e

// Trust boundaries of the running stack (docs/architecture.md, "Who may write what" and
// "Credentials and roles"): the broker takes no client without a login and lets each principal do
// only its job (infra/kafka/acls.conf); the operator endpoints want the stack's token; Kafka
// Connect's REST API wants its user's password (HTTP Basic).
// host_trust_test.go checks the files, the processes and the database as a user of the host
// meets them, TestRolesAreConfined (services/messaging/debezium) the database roles.

import (
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"outboxsaga.dev/messaging/kafka/kafkatest"
)

// eventTopics are the topics that only Connect (and the test-only injector) may write.
var eventTopics = []string{"order-events", "inventory-events", "payment-events", "shipping-events", "dead-letter-events"}

// readOnly are the principals that must not write any event topic: the viewer and every service.
var readOnly = []string{"viewer", "order", "inventory", "payment", "shipping", "notification"}

// quickConfig is a client configuration as username that gives up fast: these clients are
// expected to be refused.
func quickConfig(username, password string) *sarama.Config {
	cfg := kafkatest.ConfigAs(username, password)
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = 5*time.Second, 5*time.Second, 5*time.Second
	cfg.Metadata.Retry.Max, cfg.Metadata.Retry.Backoff = 1, 100*time.Millisecond
	cfg.Producer.Retry.Max = 0
	return cfg
}

// clientAs connects as principal with its password from the stack's secrets.
func clientAs(t *testing.T, principal string) sarama.Client {
	t.Helper()
	c, err := sarama.NewClient(kafkatest.Brokers(), quickConfig(principal, kafkatest.Password(t, principal)))
	if err != nil {
		t.Fatalf("log in as %s: %v", principal, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// poison is a record that no producer of ours writes: the consumers dead-letter it.
func poison(topic string) *sarama.ProducerMessage {
	key := "trust-" + uuid.NewString()
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder("not an event " + key)}
}

func TestKafkaRefusesClientsWithoutALogin(t *testing.T) {
	for _, tc := range []struct{ name, user, password string }{
		{"no login", "", ""},
		{"a wrong password", "viewer", "wrong-" + uuid.NewString()},
		{"an unknown principal", "mallory", uuid.NewString()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := sarama.NewClient(kafkatest.Brokers(), quickConfig(tc.user, tc.password))
			if err == nil {
				defer c.Close()
				if _, err := c.Partitions("order-events"); err == nil {
					t.Fatalf("a client with %s reads the metadata of order-events", tc.name)
				}
			}
			p, err := sarama.NewSyncProducer(kafkatest.Brokers(), quickConfig(tc.user, tc.password))
			if err == nil {
				defer p.Close()
				if _, _, err := p.SendMessage(poison("payment-events")); err == nil {
					t.Fatalf("a client with %s wrote to payment-events", tc.name)
				}
			}
		})
	}
}

// TestOnlyConnectAndTheInjectorWrite: no service and not the viewer can write an event topic (a
// forged PaymentAuthorized on payment-events was the hole); the test-only injector can.
func TestOnlyConnectAndTheInjectorWrite(t *testing.T) {
	for _, who := range readOnly {
		t.Run(who, func(t *testing.T) {
			p, err := sarama.NewSyncProducerFromClient(clientAs(t, who))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for _, topic := range eventTopics {
				_, _, err := p.SendMessage(poison(topic))
				if !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
					t.Errorf("%s writes to %s: got %v, want %v", who, topic, err, sarama.ErrTopicAuthorizationFailed)
				}
			}
		})
	}
	t.Run("injector (test only)", func(t *testing.T) {
		p, err := sarama.NewSyncProducerFromClient(clientAs(t, kafkatest.Injector))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		// A poison record: inventory and payment dead-letter it and move on.
		if _, _, err := p.SendMessage(poison("order-events")); err != nil {
			t.Fatalf("the injector cannot write order-events: %v", err)
		}
	})
}

// TestPrincipalsReadOnlyWhatIsTheirs: a service reads the topics it consumes and nothing else, and
// uses no group but its own; the viewer reads everything but cannot use a group.
func TestPrincipalsReadOnlyWhatIsTheirs(t *testing.T) {
	t.Run("order cannot read order-events", func(t *testing.T) {
		c := clientAs(t, "order")
		consumer, err := sarama.NewConsumerFromClient(c)
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		pc, err := consumer.ConsumePartition("order-events", 0, sarama.OffsetOldest)
		if err == nil {
			defer pc.Close()
			select {
			case m := <-pc.Messages():
				t.Fatalf("order read order-events@%d", m.Offset)
			case err := <-pc.Errors():
				t.Logf("refused: %v", err)
			case <-time.After(5 * time.Second):
			}
		} else if !strings.Contains(err.Error(), "authoriz") {
			t.Errorf("order reads order-events: got %v, want an authorization error", err)
		}
	})
	for _, tc := range []struct{ who, group, topic string }{
		{"order", "inventory-service", "order-events"}, {"inventory", "payment-service", "inventory-events"},
		{"payment", "order-service", "payment-events"}, {"shipping", "notification-service", "order-events"},
	} {
		t.Run(tc.who+" cannot use the group "+tc.group, func(t *testing.T) {
			// The offset manager is what a consumer (or a reset) commits through: it must not get
			// the group's coordinator at all.
			om, err := sarama.NewOffsetManagerFromClient(tc.group, clientAs(t, tc.who))
			if err != nil {
				t.Fatal(err)
			}
			defer om.Close()
			if _, err = om.ManagePartition(tc.topic, 0); !errors.Is(err, sarama.ErrGroupAuthorizationFailed) {
				t.Errorf("%s manages offsets of %s: got %v, want %v", tc.who, tc.group, err, sarama.ErrGroupAuthorizationFailed)
			}
		})
	}
	t.Run("viewer cannot commit for order-service", func(t *testing.T) {
		// The viewer may read a group's offsets (lag), not commit them. The commit sets the
		// offset the group has: were it allowed, nothing would move.
		om, err := sarama.NewOffsetManagerFromClient("order-service", clientAs(t, "viewer"))
		if err != nil {
			t.Fatal(err)
		}
		defer om.Close()
		pom, err := om.ManagePartition("inventory-events", 0)
		if err != nil {
			t.Fatalf("viewer cannot read the offsets of order-service: %v", err)
		}
		defer pom.AsyncClose()
		next, _ := pom.NextOffset()
		pom.ResetOffset(next, "")
		om.Commit()
		select {
		case err := <-pom.Errors():
			if !errors.Is(err, sarama.ErrGroupAuthorizationFailed) {
				t.Errorf("viewer commits for order-service: got %v, want %v", err, sarama.ErrGroupAuthorizationFailed)
			}
		case <-time.After(10 * time.Second):
			t.Error("viewer committed an offset for order-service")
		}
	})
	t.Run("viewer reads order-events", func(t *testing.T) {
		c := clientAs(t, "viewer")
		offsets := snapshotOffsets(t, c, "order-events")
		if len(offsets["order-events"]) == 0 {
			t.Fatal("viewer sees no partition of order-events")
		}
		admin, err := sarama.NewClusterAdminFromClient(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.ListConsumerGroupOffsets("inventory-service", map[string][]int32{"order-events": {0}}); err != nil {
			t.Errorf("viewer cannot read the lag of inventory-service: %v", err)
		}
	})
}

// TestOperatorEndpointsNeedTheToken: every operator endpoint answers 401 without the stack's
// token or with another (they were open when ADMIN_TOKEN was unset, which was the default).
func TestOperatorEndpointsNeedTheToken(t *testing.T) {
	u := stackURLs()
	sku := "T-TRUST-" + strings.ToUpper(uuid.NewString()[:8])
	type endpoint struct {
		method, url string
		body        any
	}
	endpoints := []endpoint{
		{http.MethodPut, u.inventory + "/stock/" + sku, map[string]int64{"available": 1_000_000}},
		{http.MethodPut, u.order + "/prices/" + sku, map[string]any{"unitPrice": 1, "currency": "KRW"}},
	}
	for _, svc := range []string{u.order, u.inventory, u.payment, u.shipping, u.notification} {
		endpoints = append(endpoints, endpoint{http.MethodGet, svc + "/dead-letters", nil},
			endpoint{http.MethodPost, svc + "/dead-letters/1/replay", nil})
	}
	endpoints = append(endpoints, endpoint{http.MethodPost, u.shipping + "/deliveries/" + uuid.NewString() + "/advance", nil},
		endpoint{http.MethodGet, u.notification + "/notifications", nil})
	for _, e := range endpoints {
		for name, headers := range map[string]map[string]string{
			"without a token":    nil,
			"with another token": {"Authorization": "Bearer " + uuid.NewString()},
		} {
			if code, raw := call(t, e.method, e.url, e.body, headers, nil); code != http.StatusUnauthorized {
				t.Errorf("%s %s %s: %d %.200s, want 401", e.method, e.url, name, code, raw)
			}
		}
	}
	if adminHeader() == nil {
		t.Fatal("ADMIN_TOKEN is not set: the operator token of the stack is .stack/admin-token (make test exports it)")
	}
	if code, raw := call(t, http.MethodGet, u.inventory+"/dead-letters", nil, adminHeader(), nil); code != http.StatusOK {
		t.Errorf("GET /dead-letters with the stack's token: %d %.200s", code, raw)
	}
}

// connectLogin is the user and password of Kafka Connect's REST API: CONNECT_REST_USER and
// CONNECT_REST_PASSWORD (scripts/lib.sh exports them), else operator and the stack's
// secrets/connect-rest-operator.
func connectLogin(tb testing.TB) (user, password string) {
	tb.Helper()
	user = env("CONNECT_REST_USER", "operator")
	if password = os.Getenv("CONNECT_REST_PASSWORD"); password != "" {
		return user, password
	}
	path := filepath.Join(kafkatest.StackDir(), "secrets", "connect-rest-"+user)
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("no password of Kafka Connect's REST API: %v (is the stack up? make up)", err)
	}
	return user, strings.TrimSpace(string(raw))
}

// basicAuth is the Authorization header of HTTP Basic as user with password.
func basicAuth(user, password string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
}

// connectHeader logs a request in to Kafka Connect's REST API as the stack's user.
func connectHeader(tb testing.TB) map[string]string {
	tb.Helper()
	return basicAuth(connectLogin(tb))
}

// Kafka Connect's REST API creates connectors that run as the principal connect (the only one
// that may write the event topics) with the databases' passwords of the worker's env config
// provider: nobody without its user's password may even list them.
func TestConnectRESTNeedsALogin(t *testing.T) {
	connectURL := env("CONNECT_URL", "http://127.0.0.1:8083")
	user, password := connectLogin(t)
	absent := "trust-absent-" + uuid.NewString()[:8]
	// Incomplete (no database.user): an open worker would refuse it with 400, not create it.
	spy := `{"name":"trust-spy","config":{"connector.class":"io.debezium.connector.postgresql.PostgresConnector",` +
		`"database.hostname":"${env:PG_HOST}","database.password":"${env:DEBEZIUM_ORDER_PG_PASSWORD}"}}`
	type request struct {
		method, path string
		body         any
	}
	requests := []request{
		{http.MethodGet, "/", nil},
		{http.MethodGet, "/connectors", nil},
		{http.MethodGet, "/connector-plugins", nil},
		{http.MethodGet, "/connectors/order-outbox/config", nil},
		{http.MethodPost, "/connectors", spy},
		// A connector that does not exist: an open worker answers 404, and nothing stops.
		{http.MethodPut, "/connectors/" + absent + "/pause", nil},
		{http.MethodDelete, "/connectors/" + absent, nil},
	}
	for _, r := range requests {
		for name, headers := range map[string]map[string]string{
			"without credentials":    nil,
			"with a wrong password":  basicAuth(user, "wrong-"+uuid.NewString()),
			"as an unknown user":     basicAuth("mallory", password),
			"with an empty password": basicAuth(user, ""),
		} {
			if code, raw := call(t, r.method, connectURL+r.path, r.body, headers, nil); code != http.StatusUnauthorized {
				t.Errorf("%s %s %s: %d %.200s, want 401", r.method, r.path, name, code, raw)
			}
		}
	}
	var names []string
	if code, raw := call(t, http.MethodGet, connectURL+"/connectors", nil, basicAuth(user, password), &names); code != http.StatusOK {
		t.Fatalf("GET /connectors as %s: %d %.200s, want 200", user, code, raw)
	}
	for _, n := range names {
		if n == "trust-spy" {
			t.Errorf("a refused POST /connectors created the connector trust-spy")
		}
	}
	var st struct {
		Connector struct{ State string } `json:"connector"`
	}
	if code, raw := call(t, http.MethodGet, connectURL+"/connectors/order-outbox/status", nil, basicAuth(user, password), &st); code != http.StatusOK || st.Connector.State != "RUNNING" {
		t.Errorf("order-outbox after the refused requests: %d %.200s, want 200 and RUNNING", code, raw)
	}
}

// TestPaymentTokensLeaveThroughNoEndpoint places an order and poisons order-events with an
// OrderCreated that carries a token: neither the order's timeline nor any service's dead letters
// return the token (messaging.Redact), where before both returned it raw.
func TestPaymentTokensLeaveThroughNoEndpoint(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	sku := newSKU(t, u, 1)
	id := orderEnding(t, u, "tok_ok", "COMPLETED", item{SKU: sku, Qty: 1, UnitPrice: 100})
	if code, raw := call(t, http.MethodGet, u.order+"/orders/"+id+"/events", nil, customerHeader(t, e2eCustomer), nil); code != http.StatusOK {
		t.Fatalf("GET /orders/%s/events: %d %.300s", id, code, raw)
	} else if strings.Contains(string(raw), "tok_ok") || !strings.Contains(string(raw), `"paymentToken":"[redacted]"`) {
		t.Errorf("the timeline shows the payment token (or lacks OrderCreated's masked one): %.600s", raw)
	}

	// Schema-invalid (no items), so every consumer of order-events dead-letters it, token and all.
	secret := "tok_secret_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	key := uuid.NewString()
	m := &sarama.ProducerMessage{Topic: "order-events", Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(
		`{"eventId":"` + uuid.NewString() + `","eventType":"OrderCreated","eventVersion":1,"aggregateType":"order","aggregateId":"` + key +
			`","occurredAt":"2026-01-01T00:00:00Z","traceId":"4bf92f3577b34da6a3ce929d0e0e4736","idempotencyKey":"x","data":{"orderId":"` + key +
			`","paymentToken":"` + secret + `"}}`)}
	kc := mustKafkaClient(t)
	produce(t, kc, m)
	for _, svc := range []struct{ group, url string }{{"inventory-service", u.inventory}, {"payment-service", u.payment},
		{"shipping-service", u.shipping}, {"notification-service", u.notification}} {
		consumedAsDeadLetters(t, kc, svc.group, svc.url, key, []*sarama.ProducerMessage{m})
		code, raw := call(t, http.MethodGet, svc.url+"/dead-letters?limit=1000", nil, adminHeader(), nil)
		if code != http.StatusOK || strings.Contains(string(raw), secret) || !strings.Contains(string(raw), "[redacted]") {
			t.Errorf("%s GET /dead-letters: %d, the token shows: %t, masked: %t", svc.group, code,
				strings.Contains(string(raw), secret), strings.Contains(string(raw), "[redacted]"))
		}
	}
}
