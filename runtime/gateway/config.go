package gateway

import (
	"fmt"
	"os"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// LoadSubDevices reads a sub-device list from a JSON file (the Python SDK's
// gatewaySubdevGetConfigList). Two shapes are accepted:
//
//	{"subdevices":[{"product_id":"…","device_name":"…","device_secret":"…"}]}
//	{"subDev":{"subdev_list":[{"sub_productId":"…","sub_devName":"…"}]}}   (Python SDK device_info.json)
func LoadSubDevices(path string) ([]SubDevice, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: sub-device list: %w", err)
	}
	var f struct {
		SubDevices []struct {
			ProductID    string `json:"product_id"`
			DeviceName   string `json:"device_name"`
			DeviceSecret string `json:"device_secret"`
		} `json:"subdevices"`
		SubDev *struct {
			List []struct {
				ProductID  string `json:"sub_productId"`
				DeviceName string `json:"sub_devName"`
				Secret     string `json:"sub_devSecret"`
			} `json:"subdev_list"`
		} `json:"subDev"`
	}
	if err := jsonguard.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("gateway: sub-device list %s: %w", path, err)
	}
	var out []SubDevice
	for _, s := range f.SubDevices {
		out = append(out, SubDevice{Device: Device{s.ProductID, s.DeviceName}, DeviceSecret: s.DeviceSecret})
	}
	if f.SubDev != nil {
		for _, s := range f.SubDev.List {
			out = append(out, SubDevice{Device: Device{s.ProductID, s.DeviceName}, DeviceSecret: s.Secret})
		}
	}
	for i, s := range out {
		if err := checkDevice(s.Device); err != nil {
			return nil, fmt.Errorf("gateway: sub-device list %s: entry %d: %w", path, i, err)
		}
	}
	return out, nil
}
