import { describe, expect, it } from "vitest";
import { PALETTE_16, color256, parseAnsi, stripAnsi, styleToCss } from "./ansi";

describe("parseAnsi", () => {
  it("returns plain text as one unstyled span", () => {
    expect(parseAnsi("hello world").spans).toEqual([{ text: "hello world", style: {} }]);
  });

  it("applies and resets foreground colours", () => {
    const { spans } = parseAnsi("a\x1b[31mred\x1b[0mb");
    expect(spans.map((s) => s.text)).toEqual(["a", "red", "b"]);
    expect(spans[1]?.style.fg).toBe(PALETTE_16[1]);
    expect(spans[2]?.style).toEqual({});
  });

  it("handles bold, bright colours and backgrounds in one sequence", () => {
    const { spans } = parseAnsi("\x1b[1;92;44mok");
    expect(spans[0]?.style).toEqual({ bold: true, fg: PALETTE_16[10], bg: PALETTE_16[4] });
  });

  it("supports 256-colour and truecolour", () => {
    expect(parseAnsi("\x1b[38;5;196mx").spans[0]?.style.fg).toBe("rgb(255,0,0)");
    expect(parseAnsi("\x1b[48;2;10;20;30mx").spans[0]?.style.bg).toBe("rgb(10,20,30)");
    expect(parseAnsi("\x1b[38;5;244mx").spans[0]?.style.fg).toBe("rgb(128,128,128)");
  });

  it("treats an empty SGR as a reset and 39/49/22 as partial resets", () => {
    const { spans } = parseAnsi("\x1b[1;31;41ma\x1b[39mb\x1b[49mc\x1b[22md\x1b[me");
    expect(spans.map((s) => s.style)).toEqual([
      { bold: true, fg: PALETTE_16[1], bg: PALETTE_16[1] },
      { bold: true, bg: PALETTE_16[1] },
      { bold: true },
      {},
      {},
    ]);
    expect(spans.map((s) => s.text).join("")).toBe("abcde");
  });

  it("drops cursor movement, erase-line and OSC sequences", () => {
    const { spans } = parseAnsi("\x1b[2K\x1b[1Gprogress \x1b]0;title\x07100%\x1b]8;;http://x\x1b\\link");
    expect(spans.map((s) => s.text).join("")).toBe("progress 100%link");
  });

  it("carries the style across lines", () => {
    const first = parseAnsi("\x1b[33mstart");
    const second = parseAnsi("continued", first.style);
    expect(second.spans[0]?.style.fg).toBe(PALETTE_16[3]);
  });

  it("ignores malformed extended colours without throwing", () => {
    expect(() => parseAnsi("\x1b[38;5mx\x1b[38;2;1mfoo")).not.toThrow();
    expect(stripAnsi("\x1b[38;5mx")).toBe("x");
  });
});

describe("stripAnsi", () => {
  it("removes every escape sequence", () => {
    expect(stripAnsi("\x1b[1m\x1b[32m✓\x1b[39m\x1b[22m built in 3s")).toBe("✓ built in 3s");
  });
});

describe("color256 / styleToCss", () => {
  it("maps the cube and the grey ramp", () => {
    expect(color256(16)).toBe("rgb(0,0,0)");
    expect(color256(231)).toBe("rgb(255,255,255)");
    expect(color256(232)).toBe("rgb(8,8,8)");
    expect(color256(300)).toBeUndefined();
  });
  it("turns styles into inline CSS, swapping for inverse", () => {
    expect(styleToCss({})).toBeUndefined();
    expect(styleToCss({ bold: true, fg: "red" })).toEqual({ fontWeight: "700", color: "red" });
    expect(styleToCss({ inverse: true, fg: "red" })).toEqual({ color: "#0f172a", backgroundColor: "red" });
  });
});
