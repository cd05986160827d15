package e2e

import (
	"testing"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/schemas"
)

// TestTopicRecordsMatchAsyncAPI reads every record two orders' sagas put on the topics (one
// completed and delivered, one canceled by a declined card) and checks each against
// schemas/asyncapi.yaml: its type and version must be a message of the channel it came on, and
// its envelope valid for that message's payload schema.
func TestTopicRecordsMatchAsyncAPI(t *testing.T) {
	u := stackURLs()
	doc, err := schemas.LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	v := mustValidator(t)
	kc, from := watch(t, append(append([]string{}, sagaTopics...), messaging.TopicShipping)...)
	sku := newSKU(t, u, 10)
	tests := []struct {
		token string
		want  []string
	}{
		{token: "tok_ok", want: []string{"OrderCreated", "StockReserved", "PaymentAuthorized", "OrderCompleted", "StockCommitted", "DeliveryScheduled"}},
		{token: "tok_declined", want: []string{"OrderCreated", "StockReserved", "PaymentFailed", "StockReleased", "OrderCanceled"}},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			id := placeOrder(t, u, tt.token, item{SKU: sku, Qty: 1, UnitPrice: 1000})
			records := recordsFor(t, kc, from, id, sagaTimeout, tt.want...)
			for _, r := range records {
				if err := doc.Check(v, r.Topic, r.Value); err != nil {
					t.Errorf("%s record %s/%d@%d: %v", r.Headers["eventType"], r.Topic, r.Partition, r.Offset, err)
				}
			}
			t.Logf("order %s: %d records, each a message of its channel in asyncapi.yaml", id, len(records))
		})
	}
}
