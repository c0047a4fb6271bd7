package agent_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis-dev/portcullis/agent"
)

// TestEnvoyConfig: Envoy's binary cannot run here, so the documented
// configuration is parsed with go-control-plane's types (unknown fields
// and wrong types fail) and validated with their generated rules, and its
// ext_authz filter must call the agent's service over gRPC, v3, failing
// closed, at the agent's default ext_authz port.
func TestEnvoyConfig(t *testing.T) {
	var b bootstrapv3.Bootstrap
	readYAMLProto(t, filepath.Join("gateways", "envoy", "envoy.yaml"), &b)
	if err := b.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	var ea extauthzv3.ExtAuthz
	if err := hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&ea); err != nil {
		t.Fatal(err)
	}
	cluster := ea.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if ea.GetFailureModeAllow() || cluster != "portcullis_agent" || ea.GetTransportApiVersion().String() != "V3" {
		t.Fatalf("ext_authz: %v", &ea)
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == cluster {
			port := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
			if port != 7481 {
				t.Fatalf("the agent's cluster is on port %d, the agent's default --ext-authz-listen on 7481", port)
			}
			return
		}
	}
	t.Fatalf("no cluster %s", cluster)
}

// TestDocumentedAgentConfig: the example configuration loads.
func TestDocumentedAgentConfig(t *testing.T) {
	if _, err := agent.LoadConfig(filepath.Join("gateways", "agent.yaml")); err != nil {
		t.Fatal(err)
	}
}

// readYAMLProto reads a YAML file into m, as Envoy reads its
// configuration (YAML as JSON, protobuf's JSON mapping).
func readYAMLProto(t *testing.T, path string, m proto.Message) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(j, m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestReadmeGatewayBlocks: README.md's "Protect any service" shows the
// files the tests run (the nginx snippets, the agent configuration), not
// copies that could drift.
func TestReadmeGatewayBlocks(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"nginx/portcullis-upstream.conf", "nginx/portcullis-authz.conf", "nginx/portcullis-protect.conf", "agent.yaml", "caddy/Caddyfile"} {
		b, err := os.ReadFile(filepath.Join("gateways", f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "\n"+string(b)+"```\n") {
			t.Errorf("README.md does not show gateways/%s as it is", f)
		}
	}
}
