package server

import (
	"context"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

type apiKeyService struct {
	pb.UnimplementedAPIKeyServiceServer
	*Server
}

func (s apiKeyService) CreateAPIKey(ctx context.Context, req *pb.CreateAPIKeyRequest) (*pb.CreateAPIKeyResponse, error) {
	expire, err := optionalTS("expire_time", req.GetExpireTime())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	key, secret, err := s.auth.CreateAPIKey(ctx, actorFrom(ctx), req.GetName(), req.GetScopes(), expire)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.CreateAPIKeyResponse{ApiKey: apiKeyPB(key), Secret: secret}, nil
}

func (s apiKeyService) ListAPIKeys(ctx context.Context, _ *pb.ListAPIKeysRequest) (*pb.ListAPIKeysResponse, error) {
	keys, err := s.auth.ListAPIKeys(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &pb.ListAPIKeysResponse{}
	for _, k := range keys {
		out.ApiKeys = append(out.ApiKeys, apiKeyPB(k))
	}
	return out, nil
}

func (s apiKeyService) RevokeAPIKey(ctx context.Context, req *pb.RevokeAPIKeyRequest) (*pb.RevokeAPIKeyResponse, error) {
	key, err := s.auth.RevokeAPIKey(ctx, actorFrom(ctx), req.GetApiKeyId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.RevokeAPIKeyResponse{ApiKey: apiKeyPB(key)}, nil
}
