// Whether boxes agree with the graph's geometric relationships: the rule of the
// relation-satisfaction metric, so that the page warns about a pinned box exactly when the
// metric would count the relationship as broken. Imports nothing.

// The predicates the metric checks (sg2img.eval.boxes.GEOMETRIC_PREDICATES); others
// ("on", "wearing", ...) are never warned about.
export const GEOMETRIC_PREDICATES = ["left of", "right of", "above", "below", "inside", "surrounding"];

// The predicate of subject box s relative to object box o, boxes as [x0, y0, x1, y1] in
// [0, 1] with y pointing down. Mirrors sg2img.data.common.spatial_predicate, which
// sg2img.eval.boxes.relation_satisfaction calls with the box centres as the centres:
// strict containment gives "surrounding" (s contains o) or "inside" (o contains s);
// otherwise the angle from o's centre to s's centre picks the side, in 90 degree sectors
// with the same boundaries (theta >= 3pi/4 or <= -3pi/4: left of; < -pi/4: above;
// < pi/4: right of; else below).
export function spatialPredicate(s, o) {
  const [sx0, sy0, sx1, sy1] = s, [ox0, oy0, ox1, oy1] = o;
  if (sx0 < ox0 && sx1 > ox1 && sy0 < oy0 && sy1 > oy1) return "surrounding";
  if (sx0 > ox0 && sx1 < ox1 && sy0 > oy0 && sy1 < oy1) return "inside";
  const theta = Math.atan2((sy0 + sy1) / 2 - (oy0 + oy1) / 2, (sx0 + sx1) / 2 - (ox0 + ox1) / 2);
  if (theta >= 3 * Math.PI / 4 || theta <= -3 * Math.PI / 4) return "left of";
  if (theta < -Math.PI / 4) return "above";
  if (theta < Math.PI / 4) return "right of";
  return "below";
}

// The relationships that boxes break where a pinned box takes part.
//
// Args: relationships [[s, predicate, o], ...]; boxes per object [x0, y0, x1, y1];
// pinned per object a truthy value when pinned.
// Returns: [{k, s, o, predicate, actual}] for each broken geometric relationship with a
// pinned subject or object (the model placed the others; those are not the user's doing).
export function brokenRelationships(relationships, boxes, pinned) {
  const out = [];
  relationships.forEach(([s, p, o], k) => {
    if (!GEOMETRIC_PREDICATES.includes(p) || !(pinned[s] || pinned[o])) return;
    if (!boxes[s] || !boxes[o] || s === o) return;
    const actual = spatialPredicate(boxes[s], boxes[o]);
    if (actual !== p) out.push({ k, s, o, predicate: p, actual });
  });
  return out;
}
