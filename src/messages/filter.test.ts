import { describe, expect, it } from "vitest";
import { endpointMatches, type EndpointFilter } from "./filter.js";

/** An endpoint row as the store holds it: filters are JSON text or NULL. */
function ep(filterTypes: string[] | null, channels: string[] | null): EndpointFilter {
  return {
    id: "ep_1",
    filter_types: filterTypes === null ? null : JSON.stringify(filterTypes),
    channels: channels === null ? null : JSON.stringify(channels),
  };
}

// Svix's routing (svix-server core/message_app.rs, filtered_endpoints): an endpoint without event
// types takes every type; an endpoint without channels takes every message; an endpoint with channels
// takes only messages whose channels overlap its own, so never a message without channels.
describe("endpointMatches: event types", () => {
  it("an endpoint without filterTypes receives every event type", () => {
    for (const type of ["invoice.paid", "user.created", "a"]) expect(endpointMatches(ep(null, null), type, null)).toBe(true);
  });

  it("an endpoint with filterTypes receives only those types, matched exactly", () => {
    const e = ep(["invoice.paid", "invoice.failed"], null);
    expect(endpointMatches(e, "invoice.paid", null)).toBe(true);
    expect(endpointMatches(e, "invoice.failed", null)).toBe(true);
    expect(endpointMatches(e, "invoice.created", null)).toBe(false);
    expect(endpointMatches(e, "invoice", null)).toBe(false);
    expect(endpointMatches(e, "Invoice.Paid", null)).toBe(false);
    expect(endpointMatches(e, "invoice.paid.v2", null)).toBe(false);
  });
});

describe("endpointMatches: channels", () => {
  it("an endpoint without channels receives messages with or without channels", () => {
    const e = ep(null, null);
    expect(endpointMatches(e, "t", null)).toBe(true);
    expect(endpointMatches(e, "t", [])).toBe(true);
    expect(endpointMatches(e, "t", ["project_123"])).toBe(true);
  });

  it("an endpoint with channels receives a message carrying at least one of them", () => {
    const e = ep(null, ["project_123", "project_group_11"]);
    expect(endpointMatches(e, "t", ["project_123"])).toBe(true);
    expect(endpointMatches(e, "t", ["other", "project_group_11"])).toBe(true);
    expect(endpointMatches(e, "t", ["project_123", "project_group_11"])).toBe(true);
  });

  it("an endpoint with channels does not receive a message with other channels", () => {
    const e = ep(null, ["project_123"]);
    expect(endpointMatches(e, "t", ["project_456"])).toBe(false);
    expect(endpointMatches(e, "t", ["project_12", "PROJECT_123"])).toBe(false);
  });

  it("an endpoint with channels does not receive a message without channels", () => {
    const e = ep(null, ["project_123"]);
    expect(endpointMatches(e, "t", null)).toBe(false);
    expect(endpointMatches(e, "t", [])).toBe(false);
  });
});

describe("endpointMatches: both filters", () => {
  it("requires both the event type and a channel to match", () => {
    const e = ep(["invoice.paid"], ["acme"]);
    expect(endpointMatches(e, "invoice.paid", ["acme"])).toBe(true);
    expect(endpointMatches(e, "invoice.paid", ["globex"])).toBe(false);
    expect(endpointMatches(e, "invoice.failed", ["acme"])).toBe(false);
    expect(endpointMatches(e, "invoice.paid", null)).toBe(false);
  });

  it("routes one message to exactly the endpoints that asked for it", () => {
    const endpoints: Record<string, EndpointFilter> = {
      all: ep(null, null),
      invoices: ep(["invoice.paid"], null),
      users: ep(["user.created"], null),
      acme: ep(null, ["acme"]),
      acmeInvoices: ep(["invoice.paid"], ["acme"]),
      globex: ep(null, ["globex"]),
    };
    const route = (type: string, channels: string[] | null) =>
      Object.entries(endpoints)
        .filter(([, e]) => endpointMatches(e, type, channels))
        .map(([name]) => name);
    expect(route("invoice.paid", ["acme"])).toEqual(["all", "invoices", "acme", "acmeInvoices"]);
    expect(route("invoice.paid", null)).toEqual(["all", "invoices"]);
    expect(route("user.created", ["globex", "acme"])).toEqual(["all", "users", "acme", "globex"]);
    expect(route("order.shipped", ["initech"])).toEqual(["all"]);
  });
});
