import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Suites open real sockets and databases; two at a time suits the 2-core CI machine.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
