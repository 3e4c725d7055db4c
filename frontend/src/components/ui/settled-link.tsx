"use client";
import Link from "next/link";
import * as React from "react";
import { useSettled } from "@/lib/settle";

/**
 * next/link whose viewport prefetch (the route's payload and its JavaScript, fetched and evaluated)
 * waits until the page has shown its content (lib/settle.ts): the header's links otherwise
 * prefetch three routes in the middle of the canvas' first render. Hover and touch prefetch as
 * soon as prefetching is on; navigation is the same either way.
 */
export function SettledLink({ prefetch, ...props }: React.ComponentProps<typeof Link>) {
  const settled = useSettled();
  return <Link {...props} prefetch={settled ? prefetch : false} />;
}
