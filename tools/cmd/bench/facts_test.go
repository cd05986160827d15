package main

import "testing"

func TestRedactSetting(t *testing.T) {
	tests := []struct{ in, want string }{
		{`producer.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="connect" password="s3cret";`, "producer.sasl.jaas.config=[redacted]"},
		{"producer.ssl.key.password=s3cret", "producer.ssl.key.password=[redacted]"},
		{"producer.linger.ms=5", "producer.linger.ms=5"},
		{"offset.flush.interval.ms=5000", "offset.flush.interval.ms=5000"},
	}
	for _, tt := range tests {
		if got := redactSetting(tt.in); got != tt.want {
			t.Errorf("redactSetting(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
