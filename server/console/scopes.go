package console

import (
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Each page and action of the console stands for the RPC that does the
// same over gRPC, so that the server's one scope table decides both.
const (
	opListBans      = pb.BanService_ListBans_FullMethodName
	opGetBan        = pb.BanService_GetBan_FullMethodName
	opCreateBan     = pb.BanService_CreateBan_FullMethodName
	opLiftBan       = pb.BanService_LiftBan_FullMethodName
	opAudit         = pb.AuditService_ListAuditRecords_FullMethodName
	opListSessions  = pb.SessionService_ListSessions_FullMethodName
	opRevokeSession = pb.SessionService_RevokeSession_FullMethodName
	opRevokeUser    = pb.SessionService_RevokeUserSessions_FullMethodName
	opFleet         = pb.EventService_ListSubscribers_FullMethodName
	opListKeys      = pb.KeyService_ListKeys_FullMethodName
	opRotateKey     = pb.KeyService_RotateKey_FullMethodName
	opListAPIKeys   = pb.APIKeyService_ListAPIKeys_FullMethodName
	opCreateAPIKey  = pb.APIKeyService_CreateAPIKey_FullMethodName
	opRevokeAPIKey  = pb.APIKeyService_RevokeAPIKey_FullMethodName
)

// may reports whether key may do op; "" is anything a signed-in key may
// do (sign out). A method the table does not grant by scope is nobody's.
func (c *Console) may(key storage.APIKey, op string) bool {
	if op == "" {
		return true
	}
	scope, ok := c.cfg.Scope(op)
	return ok && scope != "" && authority.HasScope(key, scope)
}

// navItem is a link of the navigation bar.
type navItem struct {
	Path, Label string
	Current     bool
}

var navPages = []struct{ path, label, op string }{
	{"/console/bans", "Bans", opListBans},
	{"/console/sessions", "Sessions", opListSessions},
	{"/console/audit", "Audit", opAudit},
	{"/console/fleet", "Fleet", opFleet},
	{"/console/keys", "Signing keys", opListKeys},
	{"/console/apikeys", "API keys", opListAPIKeys},
}

// nav lists the pages key may see.
func (c *Console) nav(key storage.APIKey, current string) []navItem {
	var out []navItem
	for _, p := range navPages {
		if c.may(key, p.op) {
			out = append(out, navItem{Path: p.path, Label: p.label, Current: p.path == current})
		}
	}
	return out
}
