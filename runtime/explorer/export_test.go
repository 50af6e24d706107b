package explorer

// SetHandoffHook makes fn run on the hand-over goroutine just before each packet is given to
// paho (topic is the publish topic, or the filter of a subscription); nil removes it. Tests
// use it to jam the link at the exact moment a packet is being handed over.
func SetHandoffHook(fn func(topic string)) {
	if fn == nil {
		testHookHandoff.Store(nil)
		return
	}
	testHookHandoff.Store(&fn)
}
