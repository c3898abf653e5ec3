-- kong.singletons: the process-wide objects Kong plugin code reaches for.
-- `dao` is set by kdao.setup() (or by the host, as Kong's init did); the rest stay nil
-- unless the host sets them.
return {
  dao = nil,
  configuration = nil,
}
