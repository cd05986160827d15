package stack_test

import (
	"slices"
	"testing"

	"outboxsaga.dev/stack"
)

// TestTableIsConsistent checks what the rendered files take for granted: unique names and ports,
// consumed topics that exist, calls to simulators started earlier.
func TestTableIsConsistent(t *testing.T) {
	ports := map[int]string{
		stack.PostgresPort: "postgres", stack.KafkaPort: "kafka", stack.KafkaControllerPort: "kafka controller",
		stack.ConnectPort: "connect", stack.PrometheusPort: "prometheus", stack.AlertmanagerPort: "alertmanager",
	}
	topics := stack.SagaTopics()
	started := map[string]stack.Kind{}
	for _, p := range stack.Programs() {
		if p.Name == "" || p.Port == 0 || p.AddrVar == "" || p.URLVar == "" || (p.Kind != stack.Saga && p.Kind != stack.Simulator && p.Kind != stack.Console) {
			t.Errorf("%+v: a row needs a name, a kind, a port, AddrVar and URLVar", p)
		}
		if other, ok := ports[p.Port]; ok {
			t.Errorf("%s: port %d is %s's already", p.Name, p.Port, other)
		}
		ports[p.Port] = p.Name
		if _, ok := started[p.Name]; ok {
			t.Errorf("%s: two rows", p.Name)
		}
		for _, c := range p.Consumes {
			if !slices.Contains(topics, c) {
				t.Errorf("%s consumes %s, which no service writes", p.Name, c)
			}
		}
		for _, c := range p.Calls {
			if started[c] != stack.Simulator {
				t.Errorf("%s calls %s, which is not a simulator started before it", p.Name, c)
			}
		}
		if p.Kind == stack.Simulator && (p.AggregateType != "" || len(p.Consumes) > 0) {
			t.Errorf("%s: a simulator has no Kafka", p.Name)
		}
		started[p.Name] = p.Kind
	}
}

func TestService(t *testing.T) {
	p := stack.Service("shipping")
	if p.Topic() != "shipping-events" || p.Database() != "shipping_db" || p.ConnectorPrincipal() != "connect-shipping" ||
		p.HeartbeatTopic() != "__debezium-heartbeat.shipping" || p.URL() != "http://127.0.0.1:8084" {
		t.Errorf("Service(shipping) = %+v: not the shipping service's names", p)
	}
	if _, ok := stack.Lookup("nobody"); ok {
		t.Error(`Lookup("nobody") found a program`)
	}
	defer func() {
		if recover() == nil {
			t.Error(`Service("nobody") did not panic`)
		}
	}()
	stack.Service("nobody")
}
