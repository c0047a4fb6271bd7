package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// rule is what a method needs from its caller.
type rule struct {
	// scope the API key must grant; "" with public or refreshToken.
	scope string
	// public: no credential (health, reflection).
	public bool
	// refreshToken: authorised by the refresh token in the request.
	refreshToken bool
}

// rules is the one table of who may call what. Every method of every
// registered service must appear here: TestEveryMethodHasARule walks the
// service descriptors to prove it, and a method missing from it is refused.
var rules = map[string]rule{
	pb.SessionService_CreateSession_FullMethodName:      {scope: authority.ScopeSessionsWrite},
	pb.SessionService_RefreshSession_FullMethodName:     {refreshToken: true},
	pb.SessionService_VerifySession_FullMethodName:      {scope: authority.ScopeSessionsRead},
	pb.SessionService_GetSession_FullMethodName:         {scope: authority.ScopeSessionsRead},
	pb.SessionService_ListSessions_FullMethodName:       {scope: authority.ScopeSessionsRead},
	pb.SessionService_RevokeSession_FullMethodName:      {scope: authority.ScopeSessionsWrite},
	pb.SessionService_RevokeUserSessions_FullMethodName: {scope: authority.ScopeSessionsWrite},

	pb.BanService_CreateBan_FullMethodName: {scope: authority.ScopeBansWrite},
	pb.BanService_LiftBan_FullMethodName:   {scope: authority.ScopeBansWrite},
	pb.BanService_GetBan_FullMethodName:    {scope: authority.ScopeBansRead},
	pb.BanService_ListBans_FullMethodName:  {scope: authority.ScopeBansRead},
	pb.BanService_CheckBan_FullMethodName:  {scope: authority.ScopeBansRead},

	pb.EventService_Watch_FullMethodName:           {scope: authority.ScopeEventsWatch},
	pb.EventService_ListSubscribers_FullMethodName: {scope: authority.ScopeEventsWatch},
	pb.EventService_StreamProgress_FullMethodName:  {scope: authority.ScopeEventsWatch},
	pb.EventService_GetRevision_FullMethodName:     {scope: authority.ScopeEventsWatch},

	pb.KeyService_ListKeys_FullMethodName:  {scope: authority.ScopeKeysRead},
	pb.KeyService_RotateKey_FullMethodName: {scope: authority.ScopeKeysAdmin},

	pb.AuditService_ListAuditRecords_FullMethodName: {scope: authority.ScopeAuditRead},

	pb.APIKeyService_CreateAPIKey_FullMethodName: {scope: authority.ScopeAdmin},
	pb.APIKeyService_ListAPIKeys_FullMethodName:  {scope: authority.ScopeAdmin},
	pb.APIKeyService_RevokeAPIKey_FullMethodName: {scope: authority.ScopeAdmin},

	pb.IssuerService_CreateIssuer_FullMethodName: {scope: authority.ScopeAdmin},
	pb.IssuerService_GetIssuer_FullMethodName:    {scope: authority.ScopeAdmin},
	pb.IssuerService_ListIssuers_FullMethodName:  {scope: authority.ScopeAdmin},
	pb.IssuerService_UpdateIssuer_FullMethodName: {scope: authority.ScopeAdmin},
	pb.IssuerService_DeleteIssuer_FullMethodName: {scope: authority.ScopeAdmin},

	pb.SignalService_CreateTransmitter_FullMethodName: {scope: authority.ScopeAdmin},
	pb.SignalService_GetTransmitter_FullMethodName:    {scope: authority.ScopeAdmin},
	pb.SignalService_ListTransmitters_FullMethodName:  {scope: authority.ScopeAdmin},
	pb.SignalService_DeleteTransmitter_FullMethodName: {scope: authority.ScopeAdmin},

	grpc_health_v1.Health_Check_FullMethodName:                             {public: true},
	grpc_health_v1.Health_List_FullMethodName:                              {public: true},
	grpc_health_v1.Health_Watch_FullMethodName:                             {public: true},
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      {public: true},
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: {public: true},
}

// callerKey carries the authenticated API key in a call's context.
type callerKey struct{}

// actorFrom returns who is calling: the API key's name (empty for
// refresh-token calls), the peer address and the gRPC channel.
func actorFrom(ctx context.Context) authority.Actor {
	a := authority.Actor{Channel: authority.ChannelGRPC}
	if k, ok := ctx.Value(callerKey{}).(storage.APIKey); ok {
		a.Name = k.Name
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		a.Addr = p.Addr.String()
	}
	return a
}

// authenticator checks the bearer API key of every non-public call against
// the rules table.
type authenticator struct {
	auth *authority.Authority
	log  *slog.Logger
	// failures limits failed authentications per peer IP (limits.go).
	failures *keyedLimiter
	// audits audits denied calls, one by one or in summaries.
	audits *deniedAuditor
}

// denied audits a failed authentication and returns err, or, when the
// peer has failed too often, ResourceExhausted. Either way the call is
// audited, one by one or counted in a summary (deniedAuditor).
func (a *authenticator) denied(ctx context.Context, method, why string, err error) error {
	ip := peerIP(ctx)
	limited := !a.failures.allow(ip)
	a.audits.record(ctx, actorFrom(ctx), ip, method, why, limited)
	if limited {
		return limitError("failed_auth_rate", "too many failed authentications from this address; retry later with a valid API key")
	}
	return err
}

func (a *authenticator) authenticate(ctx context.Context) (context.Context, error) {
	method, _ := grpc.Method(ctx)
	r, ok := rules[method]
	if !ok {
		// Fail closed: a method nobody wrote a rule for is nobody's.
		return nil, rpcerr.New(pb.ErrorReason_PERMISSION_DENIED,
			fmt.Sprintf("no access rule for %s", method), nil)
	}
	if r.refreshToken {
		return ctx, nil
	}
	secret, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, a.denied(ctx, method, "no bearer credential", rpcerr.New(pb.ErrorReason_API_KEY_INVALID,
			`send an API key as "authorization: Bearer <key>"`, nil))
	}
	key, err := a.auth.Authenticate(ctx, secret)
	if errors.Is(err, authority.ErrAPIKeyInvalid) {
		return nil, a.denied(ctx, method, "invalid API key", toStatus(ctx, a.log, err))
	} else if err != nil {
		return nil, toStatus(ctx, a.log, err)
	}
	ctx = context.WithValue(ctx, callerKey{}, key)
	logging.AddFields(ctx, logging.Fields{"caller", key.Name})
	if !authority.HasScope(key, r.scope) {
		a.audits.record(ctx, actorFrom(ctx), peerIP(ctx), method, "missing scope "+r.scope, false)
		return nil, rpcerr.New(pb.ErrorReason_PERMISSION_DENIED,
			fmt.Sprintf("API key %q lacks scope %q needed by %s", key.Name, r.scope, method), nil)
	}
	return ctx, nil
}

// needsAuth selects the methods the auth interceptor runs for: all but the
// public ones.
var needsAuth = selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
	return !rules[c.FullMethod()].public
})
