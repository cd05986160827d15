package gatewayhttp

import (
	"slices"
	"testing"

	"outboxsaga.dev/payment"
)

func TestDifferences(t *testing.T) {
	res := payment.ChargeResult{OrderID: "o2", IdempotencyKey: "pay:o1", Amount: 1, Currency: "KRW"}
	if got, want := sameKey("o1", "pay:o1", res), []string{`order "o2", want "o1"`}; !slices.Equal(got, want) {
		t.Errorf("sameKey = %q, want %q", got, want)
	}
	if got, want := sameTerms(15000, "KRW", res), []string{"amount 1, want 15000"}; !slices.Equal(got, want) {
		t.Errorf("sameTerms = %q, want %q", got, want)
	}
	if got := sameTerms(1, "KRW", res); got != nil {
		t.Errorf("sameTerms of the same terms = %q, want none", got)
	}
}
