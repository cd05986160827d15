package stack

//go:generate go run ./cmd/render -root ..
