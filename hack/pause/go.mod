module berth.dev/hack/pause

go 1.25
