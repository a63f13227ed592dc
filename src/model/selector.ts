// Label selectors (metav1.LabelSelector) evaluated against an object's labels, as the API server
// does: matchLabels AND every matchExpression; an empty selector selects everything.

export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export class SelectorError extends Error {
  override name = 'SelectorError';
}

export function matchesSelector(
  selector: LabelSelector | undefined,
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case 'In':
        if (!has || !(req.values ?? []).includes(value ?? '')) return false;
        break;
      case 'NotIn':
        if (has && (req.values ?? []).includes(value ?? '')) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        throw new SelectorError(`unknown label selector operator "${req.operator}" for key "${req.key}"`);
    }
  }
  return true;
}
