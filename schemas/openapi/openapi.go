// Package openapi holds the OpenAPI 3 document of every HTTP program of the pipeline, one
// <service>.yaml each (common.yaml: what they all serve the same way), and loads them with
// kin-openapi, validated, for the tests that check real responses against them.
//
// The documents name no servers: a program's address is its row of the stack's table
// (stack/stack.go, the one place a port is written), which the contract test (services/e2e) sets
// as the document's server.
package openapi

import (
	"context"
	"embed"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed *.yaml
var files embed.FS

// Services names the documents: one per HTTP program.
var Services = []string{"order", "inventory", "payment", "shipping", "notification", "catalog", "gatewaysim", "webhooksink"}

// Load reads the document of service, resolves its references (common.yaml among them) and
// validates it as OpenAPI 3.
func Load(ctx context.Context, service string) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.Context = ctx
	loader.IsExternalRefsAllowed = true
	loader.ReadFromURIFunc = func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		name := path.Base(u.Path)
		if u.Scheme != "" || u.Host != "" || strings.Contains(strings.TrimPrefix(u.Path, "./"), "/") {
			return nil, fmt.Errorf("openapi: %s: only the documents beside it may be referred to", u)
		}
		return files.ReadFile(name)
	}
	doc, err := loader.LoadFromURI(&url.URL{Path: service + ".yaml"})
	if err != nil {
		return nil, fmt.Errorf("openapi: load %s.yaml: %w", service, err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("openapi: %s.yaml is not valid OpenAPI 3: %w", service, err)
	}
	return doc, nil
}
