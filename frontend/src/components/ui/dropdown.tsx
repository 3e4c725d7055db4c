"use client";
import type { DropdownMenu as M } from "radix-ui";
import * as React from "react";
import { lazyModule, mergeRefs, useFocusCarry } from "@/lib/lazy";

/**
 * Radix' dropdown menu, loaded once the page has settled or on the first press of a trigger
 * (./dropdown-radix.tsx): with its focus scope, dismissable layer and positioning engine it was
 * the largest part of the shell's first bundle. Until it is there, a Dropdown renders its
 * trigger alone, with the same attributes; pressing it (pointer, Enter, Space, ArrowDown) loads
 * the menu and opens it. A focused trigger keeps the focus when the menu arrives.
 */
const radix = lazyModule(() => import("./dropdown-radix"));
const TriggerRef = React.createContext<React.Ref<HTMLElement> | undefined>(undefined);

function loaded() {
  const module = radix.current();
  if (!module) throw new Error("Dropdown parts render inside a loaded <Dropdown>");
  return module;
}

type TriggerChildProps = {
  ref?: React.Ref<HTMLElement>;
  onPointerDown?: (event: React.PointerEvent<HTMLElement>) => void;
  onKeyDown?: (event: React.KeyboardEvent<HTMLElement>) => void;
  onPointerEnter?: (event: React.PointerEvent<HTMLElement>) => void;
  onFocus?: (event: React.FocusEvent<HTMLElement>) => void;
};

const OPEN_KEYS = new Set(["Enter", " ", "ArrowDown"]);

export function Dropdown({ children, ...props }: React.ComponentProps<typeof M.Root>) {
  const module = radix.use();
  const carry = useFocusCarry(!!module);
  const [openOnLoad, setOpenOnLoad] = React.useState(false);
  if (module) {
    return (
      <TriggerRef.Provider value={carry}>
        <module.Root {...props} defaultOpen={props.defaultOpen || openOnLoad}>
          {children}
        </module.Root>
      </TriggerRef.Provider>
    );
  }
  const trigger = React.Children.toArray(children).find(
    (c): c is React.ReactElement<React.ComponentProps<typeof M.Trigger>> => React.isValidElement(c) && c.type === DropdownTrigger,
  );
  if (!trigger) return null;
  const open = () => {
    setOpenOnLoad(true);
    void radix.load().catch(() => setOpenOnLoad(false));
  };
  const { asChild, children: inner, ...triggerProps } = trigger.props;
  const element = (
    asChild && React.isValidElement(inner) ? inner : <button type="button">{inner}</button>
  ) as React.ReactElement<TriggerChildProps>;
  return React.cloneElement(element, {
    ...(triggerProps as object),
    "aria-haspopup": "menu",
    "aria-expanded": false,
    "data-state": "closed",
    ref: mergeRefs(carry, element.props.ref),
    onPointerDown: (event: React.PointerEvent<HTMLElement>) => {
      element.props.onPointerDown?.(event);
      if (event.button === 0 && !event.ctrlKey) {
        event.preventDefault();
        open();
      }
    },
    onKeyDown: (event: React.KeyboardEvent<HTMLElement>) => {
      element.props.onKeyDown?.(event);
      if (OPEN_KEYS.has(event.key)) {
        event.preventDefault();
        open();
      }
    },
    onPointerEnter: (event: React.PointerEvent<HTMLElement>) => {
      element.props.onPointerEnter?.(event);
      void radix.load().catch(() => {});
    },
    onFocus: (event: React.FocusEvent<HTMLElement>) => {
      element.props.onFocus?.(event);
      void radix.load().catch(() => {});
    },
  } as TriggerChildProps);
}

export function DropdownTrigger(props: React.ComponentProps<typeof M.Trigger>) {
  const { Trigger } = loaded();
  const ref = React.useContext(TriggerRef);
  return <Trigger {...props} ref={mergeRefs(ref as React.Ref<HTMLButtonElement>, props.ref)} />;
}

export function DropdownContent(props: React.ComponentProps<typeof M.Content>) {
  const { Content } = loaded();
  return <Content {...props} />;
}

export function DropdownItem(props: React.ComponentProps<typeof M.Item> & { danger?: boolean }) {
  const { Item } = loaded();
  return <Item {...props} />;
}

export function DropdownLabel({ children }: { children: React.ReactNode }) {
  const { Label } = loaded();
  return <Label>{children}</Label>;
}

export function DropdownSeparator() {
  const { Separator } = loaded();
  return <Separator />;
}
