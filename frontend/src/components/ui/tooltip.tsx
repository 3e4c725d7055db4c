"use client";
import * as React from "react";
import { lazyModule, mergeRefs, useFocusCarry } from "@/lib/lazy";

const radix = lazyModule(() => import("./tooltip-radix"));

type ChildProps = {
  ref?: React.Ref<HTMLElement>;
  onPointerEnter?: (event: React.PointerEvent<HTMLElement>) => void;
  onFocus?: (event: React.FocusEvent<HTMLElement>) => void;
};

/**
 * A tooltip on its child (Radix', 300 ms delay). Radix and its positioning engine are loaded once
 * the page has settled, or when the child is first pointed at or focused; until then the child
 * is rendered alone (a focused child keeps the focus when the tooltip arrives, and shows it).
 */
export function Tooltip({ content, children }: { content: React.ReactNode; children: React.ReactElement }) {
  const module = radix.use();
  const carry = useFocusCarry(!!module);
  const child = children as React.ReactElement<ChildProps>;
  if (module) {
    return (
      <module.RadixTooltip content={content} triggerRef={carry}>
        {children}
      </module.RadixTooltip>
    );
  }
  const load = () => void radix.load().catch(() => {});
  return React.cloneElement(child, {
    ref: mergeRefs(carry, child.props.ref),
    onPointerEnter: (event) => {
      child.props.onPointerEnter?.(event);
      load();
    },
    onFocus: (event) => {
      child.props.onFocus?.(event);
      load();
    },
  });
}
