package openapi_test

import (
	"context"
	"testing"

	"outboxsaga.dev/schemas/openapi"
)

// TestDocumentsAreValid lints every document with kin-openapi: it loads, its references resolve
// and it is valid OpenAPI 3 (schemas, parameters, security schemes, operation ids).
func TestDocumentsAreValid(t *testing.T) {
	for _, svc := range openapi.Services {
		t.Run(svc, func(t *testing.T) {
			doc, err := openapi.Load(context.Background(), svc)
			if err != nil {
				t.Fatal(err)
			}
			if doc.Paths.Find("/healthz") == nil || doc.Paths.Find("/metrics") == nil {
				t.Errorf("%s.yaml lacks /healthz or /metrics, which every program serves", svc)
			}
		})
	}
}
