module outboxsaga.dev/order

go 1.26.8

replace (
	outboxsaga.dev/messaging => ../messaging
	outboxsaga.dev/schemas => ../../schemas
)

require (
	github.com/google/uuid v1.6.0
	github.com/lib/pq v1.12.3
	github.com/rs/zerolog v1.35.1
	outboxsaga.dev/messaging v0.0.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
