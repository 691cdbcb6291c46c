// Starts AWS's DynamoDB Local exactly as its own main class does (same arguments), but listening on
// 127.0.0.1 only. DynamoDB Local has no bind option: it builds a Jetty `new Server(port)`, whose
// connector listens on every interface. Before starting, this sets that connector's host.
// Compiled and run by scripts/dynamodb-local (classpath: DynamoDBLocal.jar and DynamoDBLocal_lib/*).

import java.lang.reflect.Field;

import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public final class LoopbackDynamoDB {
    private static final String HOST = "127.0.0.1";

    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        if (proxy == null) {
            throw new IllegalArgumentException("DynamoDB Local refused the arguments");
        }
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        Connector[] connectors = server.getConnectors();
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local's server has no connector to bind");
        }
        for (Connector connector : connectors) {
            if (!(connector instanceof ServerConnector)) {
                throw new IllegalStateException("unexpected connector " + connector.getClass());
            }
            ((ServerConnector) connector).setHost(HOST);
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on " + HOST + " only");
    }
}
