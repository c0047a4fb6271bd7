package server

import (
	"context"
	"sync"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// issuerService serves IssuerService: the external OIDC issuers whose
// tokens the authority and the mirrors accept (internal/authority's
// issuers.go and issuerfetch.go hold the rules and the key fetcher).
type issuerService struct {
	pb.UnimplementedIssuerServiceServer
	*Server
}

// issuerFetchers runs one key fetcher per Authority, from the first
// registration of the IssuerService until the server shuts down.
var issuerFetchers sync.Map // *Server -> struct{}

// newIssuerService returns the service and starts the server's fetcher of
// issuers' keys, which stops at Shutdown.
func (s *Server) newIssuerService() issuerService {
	if _, loaded := issuerFetchers.LoadOrStore(s, struct{}{}); !loaded {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-s.closing
			cancel()
			issuerFetchers.Delete(s)
		}()
		go s.auth.RunIssuerFetcher(ctx)
		_ = s.metrics.reg.Register(issuerCollector{s: s}) // issuermetrics.go
	}
	return issuerService{Server: s}
}

func issuerSettings(i *pb.Issuer) authority.IssuerSettings {
	return authority.IssuerSettings{
		URL: i.GetIssuer(), TenantID: i.GetTenantId(), Audiences: i.GetAudiences(),
		UserClaim: i.GetUserClaim(), SessionClaim: i.GetSessionClaim(), Algorithms: i.GetAlgorithms(),
		Leeway: i.GetLeeway().AsDuration(), MaxTokenLifetime: i.GetMaxTokenLifetime().AsDuration(),
	}
}

func (s issuerService) CreateIssuer(ctx context.Context, req *pb.CreateIssuerRequest) (*pb.CreateIssuerResponse, error) {
	if err := checkDurations(req.GetIssuer()); err != nil {
		return nil, s.status(ctx, err)
	}
	rec, err := s.auth.CreateIssuer(ctx, actorFrom(ctx), issuerSettings(req.GetIssuer()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.CreateIssuerResponse{Issuer: issuerPB(rec, true)}, nil
}

func (s issuerService) UpdateIssuer(ctx context.Context, req *pb.UpdateIssuerRequest) (*pb.UpdateIssuerResponse, error) {
	if err := checkDurations(req.GetIssuer()); err != nil {
		return nil, s.status(ctx, err)
	}
	rec, err := s.auth.UpdateIssuer(ctx, actorFrom(ctx), issuerSettings(req.GetIssuer()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.UpdateIssuerResponse{Issuer: issuerPB(rec, true)}, nil
}

func (s issuerService) GetIssuer(ctx context.Context, req *pb.GetIssuerRequest) (*pb.GetIssuerResponse, error) {
	rec, err := s.auth.GetIssuer(ctx, req.GetIssuer())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.GetIssuerResponse{Issuer: issuerPB(rec, true)}, nil
}

func (s issuerService) ListIssuers(ctx context.Context, _ *pb.ListIssuersRequest) (*pb.ListIssuersResponse, error) {
	list, err := s.auth.ListIssuers(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &pb.ListIssuersResponse{}
	for _, rec := range list {
		out.Issuers = append(out.Issuers, issuerPB(rec, true))
	}
	return out, nil
}

func (s issuerService) DeleteIssuer(ctx context.Context, req *pb.DeleteIssuerRequest) (*pb.DeleteIssuerResponse, error) {
	if err := s.auth.DeleteIssuer(ctx, actorFrom(ctx), req.GetIssuer()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.DeleteIssuerResponse{}, nil
}

// checkDurations refuses durations that do not convert (out of range).
func checkDurations(i *pb.Issuer) error {
	for field, d := range map[string]*durationpb.Duration{"leeway": i.GetLeeway(), "max_token_lifetime": i.GetMaxTokenLifetime()} {
		if d != nil && d.CheckValid() != nil {
			return &authority.FieldError{Field: field, Msg: "is not a valid duration"}
		}
	}
	return nil
}

// issuerPB converts an issuer; withStatus adds the fetch status (API
// responses), which events and snapshots leave out.
func issuerPB(rec storage.Issuer, withStatus bool) *pb.Issuer {
	out := &pb.Issuer{
		Issuer: rec.URL, TenantId: rec.TenantID, Audiences: rec.Audiences, UserClaim: rec.UserClaim,
		SessionClaim: rec.SessionClaim, Algorithms: rec.Algorithms, JwksUri: rec.JWKSURI,
		CreateTime: ts(rec.CreateTime), UpdateTime: ts(rec.UpdateTime),
	}
	if rec.Leeway != 0 {
		out.Leeway = durationpb.New(rec.Leeway)
	}
	if rec.MaxTokenLifetime != 0 {
		out.MaxTokenLifetime = durationpb.New(rec.MaxTokenLifetime)
	}
	for _, k := range rec.Keys {
		out.Keys = append(out.Keys, &pb.IssuerKey{KeyId: k.ID, Algorithms: k.Algorithms, PublicKey: k.PublicKey})
	}
	if withStatus {
		out.FetchStatus = &pb.IssuerFetchStatus{
			LastSuccessTime: ts(rec.LastSuccessTime), LastErrorTime: ts(rec.LastErrorTime),
			LastError: rec.LastError, NextFetchTime: ts(rec.NextFetchTime),
		}
	}
	return out
}

// issuerEventPB converts an issuer event; ok is false for another kind.
func issuerEventPB(e storage.Event, out *pb.Event) bool {
	switch {
	case e.Kind == storage.EventIssuerUpdated && e.Issuer != nil:
		out.Kind = &pb.Event_IssuerUpdated{IssuerUpdated: issuerPB(*e.Issuer, false)}
	case e.Kind == storage.EventIssuerDeleted && e.Issuer != nil:
		out.Kind = &pb.Event_IssuerDeleted{IssuerDeleted: &pb.Issuer{Issuer: e.Issuer.URL}}
	case e.Kind == storage.EventExternalRevoked && e.Revocation != nil:
		out.Kind = &pb.Event_SessionRevoked{SessionRevoked: externalRevokedPB(*e.Revocation)}
	default:
		return false
	}
	return true
}

// fieldSnapshotIssuers is Snapshot.issuers.
const fieldSnapshotIssuers = 5

var _ authority.IssuerSink = (*snapshotWriter)(nil)

// Issuers adds the external issuers to the snapshot's first part (with
// the keys: a mirror needs them before any token it checks).
func (w *snapshotWriter) Issuers(list []storage.Issuer) error {
	for _, rec := range list {
		if err := w.add(fieldSnapshotIssuers, issuerPB(rec, false), false); err != nil {
			return err
		}
	}
	return nil
}

// ExternalRevocation adds a revocation of an external session or token to
// the snapshot, as a revoked session naming its issuer.
func (w *snapshotWriter) ExternalRevocation(r *storage.ExternalRevocation) error {
	return w.add(fieldSnapshotRevoked, externalRevokedPB(*r), true)
}

func externalRevokedPB(r storage.ExternalRevocation) *pb.RevokedSession {
	return &pb.RevokedSession{
		SessionId: r.SessionID, TenantId: r.TenantID, RevokeTime: ts(r.RevokeTime),
		AccessExpireTime: ts(r.KeepUntil), Reason: r.Reason, Issuer: r.Issuer, TokenId: r.TokenID,
	}
}

// revokeExternal is RevokeSession with an issuer: the revocation of an
// external issuer's session or token. The response's session has the
// session claim's value as its ID (empty for a token), the issuer's
// tenant, and the issuer and token ID as attributes.
func (s sessionService) revokeExternal(ctx context.Context, req *pb.RevokeSessionRequest) (*pb.RevokeSessionResponse, error) {
	wait, err := parseWait(req.GetWait())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	r, rev, err := s.auth.RevokeExternal(ctx, actorFrom(ctx), req.GetIssuer(), req.GetSessionId(), req.GetTokenId(), req.GetReason())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	attrs := map[string]string{authority.AttrIssuer: r.Issuer}
	if r.TokenID != "" {
		attrs["token_id"] = r.TokenID
	}
	resp := &pb.RevokeSessionResponse{Session: &pb.Session{
		SessionId: r.SessionID, TenantId: r.TenantID, Attributes: attrs, RevokeTime: ts(r.RevokeTime),
		AccessExpireTime: ts(r.KeepUntil), RevokeReason: r.Reason, RevokedBy: r.RevokedBy,
	}}
	if req.GetWait() != "" {
		resp.Enforcement = s.enforcement(ctx, rev, wait)
	}
	return resp, nil
}
