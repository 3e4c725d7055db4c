import type { Metadata } from "next";
import { Account } from "@/components/account/account";

export const metadata: Metadata = { title: "Account" };

export default function Page() {
  return <Account />;
}
