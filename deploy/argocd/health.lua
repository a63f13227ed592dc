-- Argo CD resource health for berth.dev Registry, Repository and RetentionPolicy.
-- Argo CD runs it with gopher-lua (Lua 5.1 semantics) and the object in the global `obj`.
-- berth's status is kstatus-compatible: `Ready` plus `observedGeneration`, and Registries add
-- `Progressing` and `Degraded`. A terminal problem (the user must change something) is reported as
-- `Degraded=True` or kstatus' `Stalled=True`; anything else that is not Ready is still in progress.
local hs = { status = "Progressing", message = "Waiting for berth to report a status" }

local function condition(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  local text = c.message
  if text == nil or text == "" then
    text = fallback
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. text
  end
  return text
end

if obj.status == nil then
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
local ready = condition(obj.status.conditions, "Ready")
if ready ~= nil and ready.observedGeneration ~= nil then
  observed = ready.observedGeneration
end
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for berth to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(obj.status.conditions, "Stalled")
local degraded = condition(obj.status.conditions, "Degraded")
local progressing = condition(obj.status.conditions, "Progressing")

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "Degraded")
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end
if ready == nil then
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end
-- Ready=False or Unknown without Degraded or Stalled: berth is still working on it (kstatus reads
-- it the same way: in progress).
if progressing ~= nil and progressing.status == "True" then
  hs.message = describe(progressing, "Progressing")
else
  hs.message = describe(ready, "Not ready yet")
end
return hs
