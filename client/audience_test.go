package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestMirrorChecksAudience: the mirror accepts the authority's
// tokens with the default audience, and refuses them as ErrTokenInvalid
// when told to expect another.
func TestMirrorChecksAudience(t *testing.T) {
	e := newEnv(t, envOptions{})
	def := newMirror(t, e, client.MirrorOptions{})
	other := newMirror(t, e, client.MirrorOptions{Audience: "api.example"})
	tok := e.login(&pb.CreateSessionRequest{UserId: "alice"}).GetAccessToken()
	def.catchUp(e)
	other.catchUp(e)
	def.ok(tok, client.CheckInput{})
	if _, err := other.Check(context.Background(), tok, client.CheckInput{}); !errors.Is(err, client.ErrTokenInvalid) {
		t.Fatalf("a mirror expecting another audience: %v, want ErrTokenInvalid", err)
	}
}
