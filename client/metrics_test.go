package client_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/client/mirrormetrics"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestMirrorMetrics: the collector reports the mirror's revision, what it
// holds and its checks by result, read from a mirror following a real
// authority.
func TestMirrorMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newMirror(t, e, client.MirrorOptions{})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(mirrormetrics.NewCollector(m.Mirror))

	alice := e.login(&pb.CreateSessionRequest{UserId: "alice"}).GetAccessToken()
	bob := e.login(&pb.CreateSessionRequest{UserId: "bob"}).GetAccessToken()
	e.ban(&pb.CreateBanRequest{Subject: userSubject("bob")})
	m.catchUp(e)
	m.ok(alice, client.CheckInput{})
	m.ok(alice, client.CheckInput{})
	if _, err := m.check(bob, client.CheckInput{}); err == nil {
		t.Fatal("bob admitted")
	}
	if _, err := m.check("not.a.token", client.CheckInput{}); err == nil {
		t.Fatal("garbage admitted")
	}

	got := gather(t, reg)
	want := map[string]float64{
		`portcullis_mirror_checks_total{result="allowed"}`:               2,
		`portcullis_mirror_checks_total{result="banned"}`:                1,
		`portcullis_mirror_checks_total{result="token_invalid"}`:         1,
		`portcullis_mirror_checks_total{result="session_revoked"}`:       0,
		`portcullis_mirror_checks_total{result="capability_restricted"}`: 0,
		`portcullis_mirror_revision`:                                     float64(e.Revision()),
		`portcullis_mirror_synced`:                                       1,
		`portcullis_mirror_entries{kind="bans"}`:                         1,
		`portcullis_mirror_entries{kind="revoked_sessions"}`:             1, // bob's session, revoked by the ban
		`portcullis_mirror_snapshots_total`:                              1,
		`portcullis_mirror_lag_revisions`:                                0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if problems, err := testutil.CollectAndLint(mirrormetrics.NewCollector(m.Mirror)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// gather returns every sample of reg as `name{labels}` -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			v := mt.GetGauge().GetValue()
			if c := mt.GetCounter(); c != nil {
				v = c.GetValue()
			}
			out[name] = v
		}
	}
	return out
}
