package kafkaacl_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/stack"
	"outboxsaga.dev/tools/kafkaacl"
)

// eventTopics are the topics only the connectors (and the test-only injector) may write.
var eventTopics = []string{messaging.TopicOrder, messaging.TopicInventory, messaging.TopicPayment,
	"shipping-events", "dead-letter-events"}

// spec is the stack's ACL file as a test run has it: acls.conf and the test-only acls-test.conf.
func spec(t *testing.T) kafkaacl.Spec {
	t.Helper()
	var all kafkaacl.Spec
	for _, name := range []string{"acls.conf", "acls-test.conf"} {
		s, err := kafkaacl.ReadFile(filepath.Join("..", "..", "infra", "kafka", name))
		if err != nil {
			t.Fatal(err)
		}
		all.ACLs = append(all.ACLs, s.ACLs...)
	}
	return all
}

// connectorWrites is what each connector's principal may write: its service's topic, the dead
// letters and the quarantine (and the order connector the two measurement topics).
var connectorWrites = map[string][]string{
	"connect-order":        {"order-events", "dead-letter-events", "quarantine-events", "cdctest-events", "cdccost-events"},
	"connect-inventory":    {"inventory-events", "dead-letter-events", "quarantine-events"},
	"connect-payment":      {"payment-events", "dead-letter-events", "quarantine-events"},
	"connect-shipping":     {"shipping-events", "dead-letter-events", "quarantine-events"},
	"connect-notification": {"dead-letter-events", "quarantine-events"},
	"connect-catalog":      {"dead-letter-events", "quarantine-events"},
}

// TestEachConnectorWritesOnlyItsTopics: a connector's principal may write its own service's topic
// and nothing of another service's; the worker's principal writes no event topic at all.
func TestEachConnectorWritesOnlyItsTopics(t *testing.T) {
	s := spec(t)
	topics := append(eventTopics, "quarantine-events", "cdctest-events", "cdccost-events", "connect-configs")
	for p, own := range connectorWrites {
		for _, topic := range topics {
			write := allows(s, p, sarama.AclResourceTopic, topic, sarama.AclOperationWrite)
			if want := slices.Contains(own, topic); write != want {
				t.Errorf("%s may write %s: %v, want %v", p, topic, write, want)
			}
		}
	}
	for _, topic := range append(eventTopics, "quarantine-events") {
		if allows(s, "connect", sarama.AclResourceTopic, topic, sarama.AclOperationWrite) {
			t.Errorf("the worker's principal connect may write %s", topic)
		}
	}
	base, err := kafkaacl.ReadFile(filepath.Join("..", "..", "infra", "kafka", "acls.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(base.Principals(), "injector") {
		t.Error("acls.conf names the test-only injector: it belongs in acls-test.conf only")
	}
}

// allows reports whether spec lets principal do op on the topic or group name (a literal name, a
// prefix, *, or All).
func allows(s kafkaacl.Spec, principal string, res sarama.AclResourceType, name string, op sarama.AclOperation) bool {
	for _, a := range s.ACLs {
		if a.Principal != principal || a.Resource != res {
			continue
		}
		matches := a.Name == name || a.Name == "*" && a.Pattern == sarama.AclPatternLiteral ||
			a.Pattern == sarama.AclPatternPrefixed && strings.HasPrefix(name, a.Name)
		if matches && (a.Operation == op || a.Operation == sarama.AclOperationAll) {
			return true
		}
	}
	return false
}

// TestOnlyConnectorsAndTheInjectorWrite: the file says what DESIGN.md "Who may write what" says.
func TestOnlyConnectorsAndTheInjectorWrite(t *testing.T) {
	s := spec(t)
	// the worker, each saga service's consumer and connector (the stack table), the injector, the viewer
	want := []string{"connect", "injector", "viewer"}
	for _, p := range stack.SagaServices() {
		want = append(want, p.Name, p.ConnectorPrincipal())
	}
	slices.Sort(want)
	if got := s.Principals(); !slices.Equal(got, want) {
		t.Fatalf("principals %v, want %v", got, want)
	}
	for _, p := range s.Principals() {
		for _, topic := range eventTopics {
			write := allows(s, p, sarama.AclResourceTopic, topic, sarama.AclOperationWrite)
			if want := p == "injector" || slices.Contains(connectorWrites[p], topic); write != want {
				t.Errorf("%s may write %s: %v, want %v", p, topic, write, want)
			}
			create := allows(s, p, sarama.AclResourceTopic, topic, sarama.AclOperationCreate)
			if create {
				t.Errorf("%s may create %s: the event topics exist before anything runs", p, topic)
			}
		}
		if p != "connect" && allows(s, p, sarama.AclResourceGroup, "outbox-saga-connect", sarama.AclOperationRead) {
			t.Errorf("%s may join Connect's group", p)
		}
	}
}

// TestServicesReadWhatTheyConsume: each service reads exactly its topics, in its own group.
func TestServicesReadWhatTheyConsume(t *testing.T) {
	s := spec(t)
	consumes := map[string][]string{
		"order":        {"inventory-events", "payment-events", "shipping-events"},
		"inventory":    {"order-events"},
		"payment":      {"inventory-events", "order-events"},
		"shipping":     {"order-events"},
		"notification": {"order-events", "shipping-events", "dead-letter-events", "quarantine-events"},
	}
	for svc, topics := range consumes {
		for _, topic := range append(eventTopics, "quarantine-events", "connect-configs", "cdctest-events") {
			read := allows(s, svc, sarama.AclResourceTopic, topic, sarama.AclOperationRead)
			if want := slices.Contains(topics, topic); read != want {
				t.Errorf("%s may read %s: %v, want %v", svc, topic, read, want)
			}
		}
		for other := range consumes {
			read := allows(s, svc, sarama.AclResourceGroup, other+"-service", sarama.AclOperationRead)
			if want := other == svc; read != want {
				t.Errorf("%s may use group %s-service: %v, want %v", svc, other, read, want)
			}
		}
	}
	if allows(s, "viewer", sarama.AclResourceGroup, "order-service", sarama.AclOperationRead) {
		t.Error("viewer may join (and so move) a service's group")
	}
}

func TestReadFileRejectsMistakes(t *testing.T) {
	for _, line := range []string{
		"order topic literal order-events",               // no operations
		"order table literal order-events Read",          // no such resource
		"order topic glob order-events Read",             // no such pattern
		"order topic literal order-events Read,Scribble", // no such operation
	} {
		path := filepath.Join(t.TempDir(), "acls.conf")
		if err := os.WriteFile(path, []byte("# a comment\n"+line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := kafkaacl.ReadFile(path); err == nil || !strings.Contains(err.Error(), ":2:") {
			t.Errorf("%q: error %v, want one naming line 2", line, err)
		}
	}
	if got := kafkaacl.PasswordVar("order"); got != "ORDER_KAFKA_PASSWORD" {
		t.Errorf("PasswordVar(order) = %s", got)
	}
}

// TestEachConnectorOwnsItsOffsetsAndTransactions: a connector's principal writes its own offsets
// topic and uses its own task's transactional id, never another connector's (so no connector can
// move another's offsets or fence its task); the worker reads every connector's offsets topic.
func TestEachConnectorOwnsItsOffsetsAndTransactions(t *testing.T) {
	s := spec(t)
	for _, p := range stack.SagaServices() {
		for _, other := range stack.SagaServices() {
			want := p.Name == other.Name
			if got := allows(s, p.ConnectorPrincipal(), sarama.AclResourceTopic, other.OffsetsTopic(), sarama.AclOperationWrite); got != want {
				t.Errorf("%s may write %s: %v, want %v", p.ConnectorPrincipal(), other.OffsetsTopic(), got, want)
			}
			if got := allows(s, p.ConnectorPrincipal(), sarama.AclResourceTransactionalID, other.TransactionalID(), sarama.AclOperationWrite); got != want {
				t.Errorf("%s may use transactional id %s: %v, want %v", p.ConnectorPrincipal(), other.TransactionalID(), got, want)
			}
		}
		if allows(s, p.ConnectorPrincipal(), sarama.AclResourceTopic, "connect-offsets", sarama.AclOperationWrite) {
			t.Errorf("%s may write the worker's connect-offsets", p.ConnectorPrincipal())
		}
		if !allows(s, "connect", sarama.AclResourceTopic, p.OffsetsTopic(), sarama.AclOperationRead) {
			t.Errorf("the worker may not read %s", p.OffsetsTopic())
		}
		if allows(s, "connect", sarama.AclResourceTopic, p.OffsetsTopic(), sarama.AclOperationWrite) {
			t.Errorf("the worker may write %s: only its connector does", p.OffsetsTopic())
		}
	}
}
