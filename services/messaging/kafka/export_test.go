package kafka

import "context"

// HighWaterMark returns the high-water mark of the partition whose message ctx handles, as its
// claim last saw it (for the tests: the claim has fetched the records before it), or -1 outside
// a claim.
func HighWaterMark(ctx context.Context) int64 {
	if hwm, ok := ctx.Value(highWaterMarkKey{}).(func() int64); ok {
		return hwm()
	}
	return -1
}
