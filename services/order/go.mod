module outboxsaga.dev/order

go 1.26.8

replace (
	outboxsaga.dev/messaging => ../messaging
	outboxsaga.dev/schemas => ../../schemas
)

require (
	github.com/google/uuid v1.6.0
	outboxsaga.dev/messaging v0.0.0
)
