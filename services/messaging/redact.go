package messaging

import "regexp"

// Redacted stands where a secret was.
const Redacted = "[redacted]"

// secretField finds the value of every JSON string field that holds a secret (the payment token),
// wherever it is nested, in whole or cut-off JSON. secretAt finds a secret quoted in a schema
// validator's error ("at '/data/paymentToken': 'tok…' does not match …").
var (
	secretField = regexp.MustCompile(`("paymentToken"\s*:\s*)"(?:[^"\\]|\\.)*("|$)`)
	secretAt    = regexp.MustCompile(`('/(?:[^'/]*/)*paymentToken'[^\n]*?: )'[^\n]*`)
)

// Redact returns b with every payment token replaced by Redacted: for what leaves a service
// through a public surface or a log (the order timeline, dead letters and DeadLettered events,
// error texts). The bytes that travel on Kafka and that a replay needs are never redacted.
func Redact(b []byte) []byte {
	b = secretField.ReplaceAll(b, []byte(`${1}"`+Redacted+`"`))
	return secretAt.ReplaceAll(b, []byte(`${1}'`+Redacted+`'`))
}
