import Foundation
import Hummingbird
import Models
import NodeAPI
import Wire

/// `/api/v1/auth`: who am I (any user), and managing users (admin only, see ``AccessPolicy``).
struct AuthRoutes {
    let users: UserService

    var collection: RouteCollection<OrchestratorContext> {
        let routes = RouteCollection(context: OrchestratorContext.self)
        let users = self.users
        routes.get("/whoami") { _, context in
            guard let principal = context.principal else { throw CodError(.unauthorized, "no user is logged in") }
            return try APIResponse.json(WhoAmIResponse(name: principal.name, capabilities: principal.capabilities))
        }
        routes.get("/users") { _, _ in try APIResponse.json(ListResponse(items: try await users.all())) }
        routes.post("/users") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let create = try RequestDecoding.decode(CreateUserRequest.self, json: Data(buffer: body))
            let (user, key) = try await users.create(name: create.name, capabilities: create.capabilities, password: create.password)
            return try APIResponse.json(CreateUserResponse(user: user, apiKey: key), status: .created)
        }
        routes.delete("/users/:name") { _, context in
            let name = try context.parameters.require("name")
            guard name != context.principal?.name else {
                throw CodError(.badRequest, "a user cannot remove itself", hint: "another admin removes it, so a cluster is never left without one")
            }
            try await users.remove(name: name)
            return try APIResponse.json(["Removed": name])
        }
        return routes
    }
}
