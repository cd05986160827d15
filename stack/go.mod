module outboxsaga.dev/stack

go 1.26.8
