package dynreg

import (
	"fmt"
	"sort"
	"strings"
)

// regionHosts maps a region key (the same keys explorer.Config.Region uses) to the registration
// gateway host. For china we use ap-guangzhou.gateway.tencentdevices.com for both API generations:
// it is the host the platform documents for /device/register and the Java SDK's default for
// /register/dev (the C SDK's gateway.tencentdevices.com reaches the same service).
var regionHosts = map[string]string{
	"china":        "ap-guangzhou.gateway.tencentdevices.com",
	"ap-guangzhou": "ap-guangzhou.gateway.tencentdevices.com",
	"us-east":      "us-east.gateway.tencentdevices.com",
	"europe":       "europe.gateway.tencentdevices.com",
	"ap-bangkok":   "ap-bangkok.gateway.tencentdevices.com",
}

// RegionHost returns the registration gateway host for a region key; "" means china. Unlike the C
// SDK, an unknown region is an error rather than a silent fallback to china, because a ProductSecret
// sent to the wrong region only yields a confusing "unknown product".
func RegionHost(region string) (string, error) {
	if region == "" {
		region = "china"
	}
	if h, ok := regionHosts[strings.ToLower(region)]; ok {
		return h, nil
	}
	keys := make([]string, 0, len(regionHosts))
	for k := range regionHosts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "", fmt.Errorf("%w: unknown region %q (known: %s)", ErrInvalidRequest, region, strings.Join(keys, ", "))
}
