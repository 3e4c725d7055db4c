import { toast } from "sonner";
import { problemMessage } from "@/lib/api/problem";

export function toastError(error: unknown, fallbackTitle?: string): void {
  const { title, description } = problemMessage(error);
  toast.error(fallbackTitle && title === "Something went wrong" ? fallbackTitle : title, { description });
}

export { toast };
